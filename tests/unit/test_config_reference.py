"""docs/configuration.md lists every key as the code declares it."""

from __future__ import annotations

from pathlib import Path

from gateway.config_reference import reference

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"


def test_the_documented_keys_are_the_declared_keys() -> None:
    text = DOC.read_text()
    documented = text.split("<!-- reference:start -->\n")[1].split("<!-- reference:end -->")[0]
    assert documented == reference(), "run `python -m gateway.config_reference` into the doc"


def test_the_reference_names_every_section_and_kind_block() -> None:
    keys = {row.split("`")[1] for row in reference().splitlines()[2:]}
    assert {"cameras[].demo.width", "cameras[].onvif.host", "cameras[].picamera.rotation"} <= keys
    assert {"listen", "mqtt.tls.ca", "client_limits.http_idle_timeout", "limits.gop_mb"} <= keys
    assert "cameras[].linger" in keys and "cameras[].linger_s" not in keys  # YAML names
