"""The repository stands alone: no tracked file points a reader at a design file or a
directory outside it; the facts live in docs/ and next to the code they explain."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(r"\.\./shared\b|\bshared/[A-Za-z_]+\.md|\bDESIGN\.md")


def tracked_files() -> list[Path]:
    result = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if result.returncode != 0:
        pytest.skip("not a git checkout")
    return [ROOT / name for name in result.stdout.decode().split("\0") if name]


def test_no_file_cites_a_design_file_outside_the_repository() -> None:
    cited = []
    for path in tracked_files():
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):  # binary, or deleted in the work tree
            continue
        cited += [f"{path.relative_to(ROOT)}: {m.group()}" for m in OUTSIDE.finditer(text)]
    assert cited == []
