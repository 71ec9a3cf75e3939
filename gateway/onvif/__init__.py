"""ONVIF cameras: one session per camera (session.py) with its settings (settings.py), and
PTZ over it (ptz.py). The camera as a video Source is gateway/sources/onvif.py.
`onvif-zeep-async` is imported on first connect only."""
