import subprocess
import sys
from pathlib import Path

from gateway import __version__


def camgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60
    )


def test_version() -> None:
    result = camgate("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"camgate {__version__}"


def test_check_config_ok(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("cameras: [{name: a, source: 'rtsp://u:pw@h/x'}]\n")
    result = camgate("check-config", str(path))
    assert result.returncode == 0 and "OK" in result.stdout and "pw" not in result.stdout


def test_bad_config_exits_nonzero_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "cameras:\n  - name: a\n    source: 'rtsp://u:hunter2@h/x'\n    transport: carrier-pigeon\n"
    )
    for args in (("check-config", str(path)), ("--config", str(path))):
        result = camgate(*args)
        assert result.returncode == 2
        assert "cameras[0].transport" in result.stderr
        assert "Traceback" not in result.stderr and "hunter2" not in result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    result = camgate("--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and "cannot read" in result.stderr


def test_bad_listen_flag() -> None:
    result = camgate("--listen", "nowhere")
    assert result.returncode == 2 and "--listen" in result.stderr
