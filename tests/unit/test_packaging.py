"""The wheel carries the viewer: an installed camgate (the Pi image, install.sh) serves it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_wheel_installs_the_viewer_where_camgate_looks(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("camgate-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    web = {n.rsplit("/", 1)[1] for n in names if "/data/share/camgate/web/" in n}
    shipped = {p.name for p in (ROOT / "web").iterdir() if p.is_file()}
    assert web == shipped  # every viewer file, in <prefix>/share/camgate/web
    assert "gateway/py.typed" in names
