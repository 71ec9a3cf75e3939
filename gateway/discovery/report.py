"""`camgate discover` output: a table of the devices found and their config snippets."""

from __future__ import annotations

from gateway.discovery.probe import ProbeResult

COLUMNS = (("ADDRESS", "address"), ("NAME", "name"), ("MODEL", "hardware"))


def _cell(value: object) -> str:
    return "-" if value in (None, "") else str(value)


def format_report(result: ProbeResult, timeout: float) -> str:
    sources = ", ".join(f"{s.interface} ({s.address})" for s in result.sources) or "none"
    lines = [f"Probed for ONVIF devices from {sources} for {timeout:g} s."]
    lines += [f"warning: {error}" for error in result.errors]
    if result.unreadable:
        count = len(result.unreadable)
        lines += [
            f"{count} repl{'y' if count == 1 else 'ies'} came back but could not be read as "
            "an ONVIF device:"
        ]
        for reply in result.unreadable:
            lines += [f"  from {reply.source}: {reply.reason}", f"    {reply.excerpt}"]
    if not result.devices and result.unreadable:
        lines += [
            "No ONVIF device could be read from the replies above. Add the camera by its",
            "address instead (`onvif: {host: ..., port: 80}`), and please report its reply.",
        ]
        return "\n".join(lines) + "\n"
    if not result.devices:
        lines += [
            "No ONVIF devices answered.",
            "Check that the cameras are on this network (multicast does not cross routers),",
            "that ONVIF and WS-Discovery are enabled in their settings, or try --timeout 10.",
        ]
        return "\n".join(lines) + "\n"

    columns = list(COLUMNS)
    if any(d.manufacturer for d in result.devices):
        columns.append(("MANUFACTURER", "manufacturer"))
    columns.append(("PTZ", "ptz"))
    rows = [[label for label, _ in columns]]
    for device in result.devices:
        row = [_cell(getattr(device, attr)) for _, attr in columns[:-1]]
        rows.append([*row, "yes" if device.ptz else "-"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    count = len(result.devices)
    lines += ["", f"{count} device{'s' if count != 1 else ''} found:", ""]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines += [
        "",
        "Add these under `cameras:` in your camgate config, set each password, then restart",
        "camgate (PTZ shows up by itself when the camera has it):",
        "",
    ]
    lines += [device.snippet.rstrip("\n") for device in result.devices]
    return "\n".join(lines) + "\n"
