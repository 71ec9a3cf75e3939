"""Hostile config files: deep nesting and alias bombs end in a clear error, at once and in
bounded memory, never a traceback."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.config import MAX_CONFIG_BYTES, ConfigError, parse_config

pytestmark = pytest.mark.attack

# The classic "billion laughs": 9 levels of 9 aliases each, 10**9 strings once expanded,
# ~350 bytes as written.
BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "cameras: *i",
    ]
)
DEEP_FLOW = "cameras: " + "[" * 100_000 + "]" * 100_000
DEEP_BLOCK = "cameras:\n" + "".join(f"{' ' * i}k{i}:\n" for i in range(1, 300)) + " " * 300 + "x\n"
MEMORY_LIMIT = 512 * 1024 * 1024  # address space for a camgate that reads the file


def test_the_bomb_is_the_classic_size() -> None:
    assert len(BILLION_LAUGHS) < 400


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BILLION_LAUGHS, "anchors and aliases expand to more than 1,000,000"),
        (DEEP_FLOW, "nested deeper than 32 levels"),
        (DEEP_BLOCK, "nested deeper than 32 levels"),
        ("cameras: &loop [*loop]", "an alias refers to a node that contains it"),
    ],
    ids=["billion-laughs", "deep-flow", "deep-block", "recursive-alias"],
)
def test_a_hostile_file_is_refused_with_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, origin="camgate.yaml")
    assert str(info.value).startswith(f"camgate.yaml: {message}")
    assert len(str(info.value)) < 200  # nothing expanded is quoted back


def test_a_huge_file_is_refused_unread() -> None:
    with pytest.raises(ConfigError, match="larger than 1024 KB"):
        parse_config("#" * (MAX_CONFIG_BYTES + 1))


def test_an_expanded_value_is_never_quoted_whole() -> None:
    # Within the caps, but 50 KB once expanded: the error quotes a short excerpt.
    text = (
        "cameras: [{name: c, source: demo}]\n"
        f'state_dir: &long "{"x" * 500}"\n'
        f"log_level: [{', '.join(['*long'] * 100)}]\n"
    )
    with pytest.raises(ConfigError, match=r"^log_level: ") as info:
        parse_config(text)
    assert len(str(info.value)) < 400


def test_ordinary_anchors_still_work() -> None:
    text = """
cameras:
  - &front {name: front, source: "rtsp://admin:s3cret@192.0.2.10/stream", preload: true}
  - {<<: *front, name: back}
"""
    config = parse_config(text)
    assert [c.name for c in config.cameras] == ["front", "back"]
    assert config.cameras[1].preload is True


@pytest.mark.parametrize("text", [BILLION_LAUGHS, DEEP_FLOW], ids=["billion-laughs", "deep"])
def test_check_config_answers_in_bounded_time_and_memory(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(text)

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,  # the unbounded loader ran past 60 s on the bomb
        preexec_fn=limit_memory,
    )
    elapsed = time.monotonic() - started
    print(f"check-config on {path.name}: exit {result.returncode} after {elapsed:.2f} s")
    assert result.returncode == 2
    assert result.stderr.startswith("camgate: config error: ")
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr
