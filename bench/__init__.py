"""camgate benchmarks: `python -m bench` (see docs/benchmarks.md).

Kept import-free: bench.camera runs under Debian's /usr/bin/python3, not the venv.
"""
