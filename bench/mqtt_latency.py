"""MQTT PTZ latency: a command published to the broker -> its ONVIF request arriving at the
camera. Target (issue 4): p50 <= 20 ms on loopback.

    python -m bench.mqtt_latency [--commands 300] [--out FILE.json]

Re-executes itself in a fresh network namespace holding only lo (root). Mosquitto (Debian)
and the ONVIF test device (tests/rig/onvif_device.py, real SOAP, the same child as
bench.ptz_latency) run as child processes on the rig's CPUs; camgate and the publishing
client (aiomqtt, QoS 0 like Home Assistant's buttons) run in this process. Commands
alternate Frigate's MOVE_LEFT / MOVE_RIGHT and STOP, one at a time: the next is sent once
camgate has published the previous one's result on <prefix>/<camera>/ptz/state. Clocks
are CLOCK_MONOTONIC in every process.

Per command:  wire = device arrival - publish (broker hop, camgate parse, controller, SOAP)
              dispatch = backend call started - message received by camgate
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.netns import bring_up_loopback, in_private_netns, reexec_in_netns
from bench.procs import RIG_CPUS, Children
from bench.ptz_latency import UNUSED_RTSP, device_arrival, spawn_onvif_device
from bench.stats import latency_table, summary
from tests.rig.net import free_port, wait_port
from tests.rig.wait import wait_until

TARGET_P50_MS = 20.0
COMMANDS = ("MOVE_LEFT", "STOP", "MOVE_RIGHT", "STOP")


@dataclass(frozen=True)
class MqttLatencySettings:
    commands: int = 300
    warmup: int = 20  # first requests open HTTP connections, build zeep services
    target_p50_ms: float = TARGET_P50_MS


async def measure_mqtt_latency(
    settings: MqttLatencySettings, run_dir: Path | None = None
) -> dict[str, Any]:
    from gateway.app import Gateway
    from gateway.config import parse_config
    from gateway.ptz.controller import CommandTiming
    from tests.rig.mqtt_probe import MqttProbe

    run_dir = run_dir or Path(tempfile.mkdtemp(prefix="camgate-mqtt-bench-"))
    logging.getLogger("camgate.hub").setLevel(logging.ERROR)  # the never-played stream
    wire: list[float] = []
    dispatch: list[float] = []
    async with Children(run_dir) as children:
        broker_port = free_port()
        conf = run_dir / "mosquitto.conf"
        conf.write_text(
            f"listener {broker_port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "user root\n"
        )
        await children.spawn("mosquitto", ["mosquitto", "-c", str(conf)], cpus=RIG_CPUS)
        await wait_port(broker_port, "127.0.0.1", 20)
        device, onvif = await spawn_onvif_device(children)
        config = {
            "listen": f"127.0.0.1:{free_port()}",
            "auth": False,
            "cameras": [{"name": "cam", "source": UNUSED_RTSP, "onvif": onvif, "preload": True}],
            "mqtt": {
                "host": "127.0.0.1",
                "port": broker_port,
                "client_id": "camgate-bench",
                "topic_prefix": "camgate",
            },
        }
        gateway = Gateway.from_config(parse_config(json.dumps(config)))
        await gateway.start()
        try:
            controller = gateway.ptz_controllers["cam"]
            bridge = gateway.mqtt
            assert bridge is not None
            await wait_until(lambda: gateway.ptz_backends["cam"].capabilities.any, 30)
            await wait_until(bridge.connected.is_set, 30)
            finished: asyncio.Queue[CommandTiming] = asyncio.Queue()
            controller.on_timing = finished.put_nowait
            async with MqttProbe("127.0.0.1", broker_port, client_id="bench") as probe:
                for i in range(settings.warmup + settings.commands):
                    payload = COMMANDS[i % len(COMMANDS)]
                    sent = time.monotonic()
                    await probe.client.publish("camgate/cam/ptz", payload, qos=0)
                    operation = "Stop" if payload == "STOP" else "ContinuousMove"
                    arrived = await device_arrival(device, operation, sent)
                    timing = await asyncio.wait_for(finished.get(), 10)
                    while timing.received_at < sent:  # e.g. the presets read at connect
                        timing = await asyncio.wait_for(finished.get(), 10)
                    if i < settings.warmup:
                        continue
                    wire.append((arrived - sent) * 1000)
                    dispatch.append((timing.started_at - timing.received_at) * 1000)
        finally:
            await gateway.stop()
    wire_summary = summary(wire)
    p50 = wire_summary["p50"]
    return {
        "settings": asdict(settings),
        "wire_ms": wire_summary,
        "dispatch_ms": summary(dispatch),
        "target_met": p50 is not None and p50 <= settings.target_p50_ms,
    }


def render_lines(result: dict[str, Any]) -> list[str]:
    lines = latency_table(
        "MQTT PTZ latency (ms): published -> ONVIF request at the camera",
        [
            ("published -> on the wire", result["wire_ms"]),
            ("  camgate received -> backend", result["dispatch_ms"]),
        ],
        28,
    )
    target = result["settings"]["target_p50_ms"]
    lines.append(f"target p50 <= {target:g} ms: {'met' if result['target_met'] else 'NOT met'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.mqtt_latency", description=__doc__)
    parser.add_argument("--commands", type=int, default=MqttLatencySettings.commands)
    parser.add_argument("--out", type=Path, default=Path("bench-mqtt-latency.json"))
    args = parser.parse_args(argv)
    if not in_private_netns():
        reexec_in_netns("bench.mqtt_latency", argv)
    bring_up_loopback()
    result = asyncio.run(measure_mqtt_latency(MqttLatencySettings(commands=args.commands)))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(render_lines(result)))
    print(f"\nresults: {args.out}")
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
