"""A camera's sound: fan-out to listeners (fanout.py), AAC to Opus (transcode.py)."""
