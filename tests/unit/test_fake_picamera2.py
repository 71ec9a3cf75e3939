"""The tests' picamera2 stand-in must match the real picamera2's API: every method camgate
calls, with the same parameters and defaults, read from the real package's source (the
PyPI sdist that scripts/install-deps.sh --test downloads; it can't be imported here)."""

from __future__ import annotations

import ast
import inspect
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.rig import prereq

ROOT = Path(__file__).parents[2]
SDIST_DIR = ROOT / ".venv" / "share" / "picamera2-sdist"
FAKE_DIR = ROOT / "tests" / "rig" / "fake_picamera2"
# (file in the real package, class, method): everything camgate or the fake's callers use.
CHECKED = [
    ("picamera2.py", "Picamera2", "__init__"),
    ("picamera2.py", "Picamera2", "global_camera_info"),
    ("picamera2.py", "Picamera2", "create_video_configuration"),
    ("picamera2.py", "Picamera2", "configure"),
    ("picamera2.py", "Picamera2", "start"),
    ("picamera2.py", "Picamera2", "stop"),
    ("picamera2.py", "Picamera2", "start_recording"),
    ("picamera2.py", "Picamera2", "stop_recording"),
    ("picamera2.py", "Picamera2", "close"),
    ("encoders/h264_encoder.py", "H264Encoder", "__init__"),
    ("encoders/h264_encoder.py", "H264Encoder", "force_key_frame"),
    ("encoders/encoder.py", "Encoder", "outputframe"),
    ("outputs/output.py", "Output", "__init__"),
    ("outputs/output.py", "Output", "start"),
    ("outputs/output.py", "Output", "stop"),
    ("outputs/output.py", "Output", "outputframe"),
]


@pytest.fixture(scope="module")
def real_source() -> dict[str, str]:
    archives = sorted(SDIST_DIR.glob("picamera2-*.tar.gz"))
    if not archives:
        prereq.missing(f"the picamera2 source is not in {SDIST_DIR}")
    files = {}
    with tarfile.open(archives[-1]) as archive:
        for member in archive.getmembers():
            parts = member.name.split("/", 2)
            if len(parts) == 3 and parts[1] == "picamera2" and member.name.endswith(".py"):
                handle = archive.extractfile(member)
                assert handle is not None
                files[parts[2]] = handle.read().decode()
    return files


@pytest.fixture(scope="module")
def fake() -> Iterator[dict[str, ModuleType]]:
    sys.path.insert(0, str(FAKE_DIR))
    try:
        import picamera2
        import picamera2.encoders
        import picamera2.outputs

        yield {
            "Picamera2": picamera2,
            "H264Encoder": picamera2.encoders,
            "Encoder": picamera2.encoders,
            "Output": picamera2.outputs,
        }
    finally:
        sys.path.remove(str(FAKE_DIR))
        for name in [n for n in sys.modules if n.split(".")[0] in ("picamera2", "libcamera")]:
            del sys.modules[name]


def real_parameters(source: str, cls: str, method: str) -> list[tuple[str, str | None]]:
    """(name, default as source text) of a method in the real source."""
    tree = ast.parse(source)
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls)
    function = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == method)
    args = function.args
    names = [a.arg for a in args.args]
    defaults: list[str | None] = [None] * (len(names) - len(args.defaults))
    defaults += [ast.unparse(d) for d in args.defaults]
    return list(zip(names, defaults, strict=True))


def fake_parameters(function: object) -> list[tuple[str, str | None]]:
    found = []
    for name, p in inspect.signature(function).parameters.items():  # type: ignore[arg-type]
        default = None if p.default is inspect.Parameter.empty else p.default
        found.append(
            (
                name,
                None if default is None and p.default is inspect.Parameter.empty else repr(default),
            )
        )
    return found


@pytest.mark.parametrize(("path", "cls", "method"), CHECKED)
def test_the_stand_in_matches_the_real_api(
    real_source: dict[str, str], fake: dict[str, ModuleType], path: str, cls: str, method: str
) -> None:
    real = real_parameters(real_source[path], cls, method)
    function = getattr(getattr(fake[cls], cls), method)
    mine = fake_parameters(function)
    if real and real[0][0] == "self":
        real = real[1:]
    if mine and mine[0][0] == "self":
        mine = mine[1:]
    assert [n for n, _ in mine] == [n for n, _ in real], f"{cls}.{method} parameters"
    for (name, real_default), (_, my_default) in zip(real, mine, strict=True):
        if real_default is None:
            assert my_default is None, f"{cls}.{method}({name}) has no default in picamera2"
        elif real_default.startswith("libcamera."):
            assert my_default is not None, f"{cls}.{method}({name}) needs a default"
        else:
            assert my_default == repr(ast.literal_eval(real_default)), f"{cls}.{method}({name})"
