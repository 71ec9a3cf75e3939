"""Per-viewer path estimate and the main/sub stream policy (pure: no I/O, time passed in)."""
