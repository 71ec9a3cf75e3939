"""Draw a running clock into an 8-bit luma plane (seven-segment digits, no fonts needed).

Pure pixel code: the demo camera uses it so a viewer can see the picture is live.
"""

from __future__ import annotations

# Segments a..g as (x, y, w, h) in a 4x7 cell grid, scaled by the digit size.
_SEGMENTS = {
    "a": (0, 0, 4, 1),
    "b": (3, 0, 1, 4),
    "c": (3, 3, 1, 4),
    "d": (0, 6, 4, 1),
    "e": (0, 3, 1, 4),
    "f": (0, 0, 1, 4),
    "g": (0, 3, 4, 1),
}
_DIGITS = {
    "0": "abcdef",
    "1": "bc",
    "2": "abged",
    "3": "abgcd",
    "4": "fgbc",
    "5": "afgcd",
    "6": "afgedc",
    "7": "abc",
    "8": "abcdefg",
    "9": "abcdfg",
}
CELL_W, CELL_H = 4, 7
BACKGROUND = 16
FOREGROUND = 235
NEUTRAL_CHROMA = 128


def fill_rect(plane: memoryview, stride: int, x: int, y: int, w: int, h: int, value: int) -> None:
    row = bytes([value]) * w
    for yy in range(y, y + h):
        start = yy * stride + x
        plane[start : start + w] = row


def text_size(text: str, scale: int) -> tuple[int, int]:
    """Width and height in pixels of `text` drawn at `scale` pixels per cell."""
    width = sum((1 if ch == ":" else CELL_W) + 1 for ch in text) * scale
    return width + scale, (CELL_H + 2) * scale


def draw_text(plane: memoryview, stride: int, x0: int, y0: int, text: str, scale: int) -> None:
    """Digits and colons on a dark box at (x0, y0). The caller keeps it inside the plane."""
    width, height = text_size(text, scale)
    fill_rect(plane, stride, x0, y0, width, height, BACKGROUND)
    x = x0 + scale
    y = y0 + scale
    for ch in text:
        if ch == ":":
            for dot_y in (2, 4):
                fill_rect(plane, stride, x, y + dot_y * scale, scale, scale, FOREGROUND)
            x += 2 * scale
            continue
        for seg in _DIGITS.get(ch, ""):
            sx, sy, sw, sh = _SEGMENTS[seg]
            fill_rect(
                plane, stride, x + sx * scale, y + sy * scale, sw * scale, sh * scale, FOREGROUND
            )
        x += (CELL_W + 1) * scale
