"""PTZ: command vocabulary, per-camera controller, backend contract (docs/ptz.md)."""
