"""Results dict -> the printed table, ratios and targets."""

from __future__ import annotations

from typing import Any

from bench.targets import BASELINE, CAMGATE

TTFF_P50_TARGET_MS = 300.0
TRANSIT_P99_TARGET_MS = 5.0
# Other processes using more than this (% of one core) during a window make its latency
# and loss numbers a measure of the neighbours.
FOREIGN_CPU_WARNING = 50.0


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return [line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def slope(by_count: dict[int, float], low: int = 1, high: int = 16) -> float | None:
    """Marginal gateway CPU per extra viewer between `low` and `high` viewers."""
    if low not in by_count or high not in by_count:
        return None
    return (by_count[high] - by_count[low]) / (high - low)


def capacity_lines(results: dict[str, Any]) -> list[str]:
    headers = [
        "target", "viewers", "CPU%", "(range)", "RSS MB", "loss%", "wire p50", "p99",
        "viewer p50", "p99 ms", "Mbit/s/viewer", "receivers CPU%", "machine CPU%",
    ]  # fmt: skip
    rows = []
    for kind in (CAMGATE, BASELINE):
        for p in results["capacity"].get(kind, []):
            low, high = p["gateway_cpu_range"]
            lat, wire = p["latency_ms"], p["wire_ms"]
            rows.append([
                kind, str(p["viewers"]), _f(p["gateway_cpu"]),
                f"({_f(low)}-{_f(high)})" if p["rounds"] > 1 else "",
                _f(p["gateway_rss_mb"], 0), _f(p["loss_pct"], 2),
                _f(wire["p50"]), _f(wire["p99"]), _f(lat["p50"]), _f(lat["p99"]),
                _f(p["mbit_per_viewer"], 2),
                _f(p["receivers_cpu"]), _f(p["machine_cpu"], 0),
            ])  # fmt: skip
    if not rows:
        return ["(no capacity results)"]
    cg = {p["viewers"]: p["gateway_cpu"] for p in results["capacity"].get(CAMGATE, [])}
    bl = {p["viewers"]: p["gateway_cpu"] for p in results["capacity"].get(BASELINE, [])}
    counts = sorted(set(cg) & set(bl) - {0})
    ratios = ", ".join(f"{n}: {_ratio(cg.get(n), bl.get(n))}" for n in counts)
    top = max(counts) if counts else 16
    s_cg, s_bl = slope(cg, 1, top), slope(bl, 1, top)
    floor = results.get("floor") or {}
    foreign = max(
        (p.get("foreign_cpu_max", 0.0) for ps in results["capacity"].values() for p in ps),
        default=0.0,
    )
    warning = (
        [
            f"WARNING: other processes used up to {foreign:.0f} % of a core during these "
            "windows: latency tails and loss are unreliable, CPU per process less so"
        ]
        if foreign > FOREIGN_CPU_WARNING
        else []
    )
    return [
        *_table(headers, rows),
        f"camgate/baseline CPU ratio at {ratios}",
        f"marginal CPU per extra viewer (slope 1->{top}): camgate {_f(s_cg, 2)} %, "
        f"baseline {_f(s_bl, 2)} %, ratio {_ratio(s_cg, s_bl)}",
        f"floor, camera send -> whole frame in camgate's RTSP client alone (no hub/WebRTC): "
        f"p50 {_f(floor.get('p50'), 2)} ms, p99 {_f(floor.get('p99'), 2)} ms, "
        f"max {_f(floor.get('max'), 2)} ms",
        *_worker_lines(results),
        *warning,
    ]


def _worker_lines(results: dict[str, Any]) -> list[str]:
    """With send workers, camgate's CPU above is its process plus its workers."""
    points = [p for p in results["capacity"].get(CAMGATE, []) if p.get("worker_cpu")]
    if not points:
        return []
    shares = "; ".join(
        f"{p['viewers']}: gateway {_f(p['gateway_cpu'] - sum(p['worker_cpu']))}, workers "
        + " + ".join(_f(cpu) for cpu in p["worker_cpu"])
        for p in points
    )
    return [f"camgate with {len(points[0]['worker_cpu'])} send workers, CPU % by process: {shares}"]


def ttff_lines(results: dict[str, Any]) -> list[str]:
    headers = [
        "target", "GOP s", "joins", "p50 ms", "p90 ms", "max ms", "fail",
        "decoded p50", "answer p50", "connected p50",
    ]  # fmt: skip
    rows = []
    for t in results["ttff"]:
        r, d = t["rendered_ms"], t["decoded_ms"]
        rows.append([
            t["target"], f"{t['gop_s']:g}", str(r["n"]), _f(r["p50"], 0), _f(r["p90"], 0),
            _f(r["max"], 0), str(t["failures"]), _f(d["p50"], 0),
            _f(t["answer_ms"]["p50"], 0), _f(t["connected_ms"]["p50"], 0),
        ])  # fmt: skip
    return _table(headers, rows) if rows else ["(no joins)"]


MARGINAL_CPU_TARGET = 1.0  # % of a core per extra 1080p30 viewer (issue: fan-out)
FANOUT_RATIO_TARGET = 2.5


def target_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    cg_ttff = [t for t in results["ttff"] if t["target"] == CAMGATE]
    if cg_ttff:
        values = ", ".join(
            f"GOP {t['gop_s']:g} s: {_f(t['rendered_ms']['p50'], 0)}" for t in cg_ttff
        )
        met = all(
            t["rendered_ms"]["p50"] is not None
            and t["rendered_ms"]["p50"] <= TTFF_P50_TARGET_MS
            and not t["failures"]
            for t in cg_ttff
        )
        lines.append(
            _verdict(met, f"camgate TTFF p50 <= {TTFF_P50_TARGET_MS:g} ms at every GOP", values)
        )
    cg = {p["viewers"]: p["gateway_cpu"] for p in results["capacity"].get(CAMGATE, [])}
    bl = {p["viewers"]: p["gateway_cpu"] for p in results["capacity"].get(BASELINE, [])}
    counts = sorted(set(cg) & set(bl) - {0})
    if len(counts) >= 2:
        top = max(counts)
        s_cg, s_bl = slope(cg, 1, top), slope(bl, 1, top)
        if s_cg is not None and s_bl is not None:
            lines.append(
                _verdict(
                    s_cg <= MARGINAL_CPU_TARGET and s_cg * FANOUT_RATIO_TARGET <= s_bl,
                    f"marginal CPU per viewer <= {MARGINAL_CPU_TARGET:g} % and "
                    f">= {FANOUT_RATIO_TARGET:g}x below the baseline",
                    f"camgate {_f(s_cg, 2)} %, baseline {_f(s_bl, 2)} %, slope 1->{top}",
                )
            )
    for p in results["capacity"].get(CAMGATE, []):
        if p["viewers"] >= 40:
            lines.append(
                _verdict(
                    p["loss_pct"] < 1.0 and p["gateway_cpu"] <= 100.0,
                    f"{p['viewers']} viewers on one core with < 1 % of frames lost",
                    f"CPU {_f(p['gateway_cpu'])} %, loss {_f(p['loss_pct'], 2)} %",
                )
            )
    for p in results["capacity"].get(CAMGATE, []):
        wire, lat = p["wire_ms"], p["latency_ms"]
        if not wire.get("n"):
            continue
        lines.append(
            _verdict(
                wire["p99"] <= TRANSIT_P99_TARGET_MS,
                f"camgate transit p99 <= {TRANSIT_P99_TARGET_MS:g} ms, {p['viewers']} viewer(s)",
                f"camera -> gateway send p99 {_f(wire['p99'], 2)} ms; "
                f"-> aiortc viewer p99 {_f(lat['p99'], 2)} ms",
            )
        )
    return lines


def _verdict(met: bool, what: str, values: str) -> str:
    return f"[{'met' if met else 'NOT met'}] {what} ({values})"


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    stream: dict[str, Any] = next(iter(results["stream"].values()), {})
    what = f"{stream.get('resolution')} {stream.get('fps')} fps H.264 {stream.get('profile')}"
    out = [
        f"camgate benchmark, {m['date']}: {m['nproc']} x {m['cpu_model']}, kernel {m['kernel']}, "
        f"Python {m['python']}, aiortc {m['aiortc']}, av {m['av']}"
        + (" (QUICK)" if results["settings"]["quick"] else ""),
        f"stream: {what}, "
        + ", ".join(
            f"GOP {s['gop_s']:g} s {s['mbit_s']} Mbit/s" for s in results["stream"].values()
        ),
        "",
        "Gateway CPU (% of one core) and RSS with non-decoding aiortc viewers, GOP 2 s. Transit "
        "from camera send to a frame's last packet: wire = the gateway sent it (packet tap "
        "on lo), viewer = the aiortc viewer processed it",
        *capacity_lines(results),
        "",
        "Time to first frame in headless Chromium (WHEP POST -> first requestVideoFrameCallback;"
        " answer = POST answered, connected = ICE+DTLS up)",
        *ttff_lines(results),
        "",
        "Targets",
        *target_lines(results),
    ]
    if "duration_s" in results:
        out.append(f"\n(run took {results['duration_s']:.0f} s)")
    return "\n".join(out)
