"""camgate's command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from msgspec.structs import replace

from gateway import __version__
from gateway.auth.commands import COMMANDS as ACCOUNT_COMMANDS
from gateway.auth.commands import add_commands as add_account_commands
from gateway.auth.commands import run as run_account_command
from gateway.config import (
    Config,
    ConfigError,
    demo_config,
    load_config,
    parse_listen,
    pi_camera_config,
)
from gateway.logs import redact_text, setup_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="camgate",
        description="Camera gateway: RTSP and demo cameras to browsers over WebRTC, "
        "camera H.264 passed through untouched.",
    )
    parser.add_argument("--version", action="version", version=f"camgate {__version__}")
    parser.add_argument(
        "--config", "-c", metavar="FILE", help="YAML config (default: one built-in demo camera)"
    )
    parser.add_argument(
        "--listen", "-l", metavar="HOST:PORT", help="HTTP address (default 0.0.0.0:8080)"
    )
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--log-format", choices=("text", "json"))
    parser.add_argument(
        "--state-dir", metavar="DIR", help="where accounts and certificates are kept"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("file", metavar="FILE")
    discover = commands.add_parser(
        "discover", help="find ONVIF cameras on the local network (WS-Discovery)"
    )
    discover.add_argument(
        "--timeout", type=float, default=3.0, metavar="S", help="seconds to wait (default 3)"
    )
    discover.add_argument(
        "--interface",
        "-i",
        action="extend",
        nargs="+",
        metavar="NAME",
        help="probe from these interfaces (name or IPv4 address; default: all but loopback)",
    )
    add_account_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "check-config":
            return check_config(args.file)
        if args.command == "discover":
            return discover(args.timeout, args.interface)
        config = load_config(args.config) if args.config else default_config()
        if args.listen:
            config = replace(config, listen=parse_listen(args.listen, "--listen"))
        if args.state_dir:
            config = replace(config, state_dir=Path(args.state_dir).expanduser())
    except ConfigError as exc:
        print(f"camgate: config error: {redact_text(str(exc))}", file=sys.stderr)
        return 2
    if args.command in ACCOUNT_COMMANDS:
        return run_account_command(args, config.state_dir)
    setup_logging(args.log_level or config.log_level, args.log_format or config.log_format)
    try:
        return asyncio.run(_serve(config))
    except KeyboardInterrupt:
        return 0


def default_config() -> Config:
    """No config file: the Pi's camera where there is one, else the demo camera."""
    from gateway.sources.picamera import pi_camera_present

    return pi_camera_config() if pi_camera_present() else demo_config()


async def _serve(config: Config) -> int:
    from gateway.app import serve  # imports aiortc/av: keep `--version` and checks fast

    return await serve(config)


def check_config(path: str) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"camgate: config error: {redact_text(str(exc))}", file=sys.stderr)
        return 2
    print(
        f"{path}: OK ({len(config.cameras)} camera(s): {', '.join(c.name for c in config.cameras)})"
    )
    return 0


def discover(timeout: float, interfaces: list[str] | None) -> int:
    from gateway.discovery.probe import DiscoveryError, probe
    from gateway.discovery.report import format_report

    if not 0 < timeout <= 60:
        print("camgate: --timeout must be between 0 and 60 seconds", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(probe(timeout, interfaces))
    except DiscoveryError as exc:
        print(f"camgate: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(format_report(result, timeout), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
