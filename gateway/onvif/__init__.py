"""ONVIF cameras: one session per camera (session.py), PTZ over it (ptz.py), and the camera
as a video Source (source.py). `onvif-zeep-async` is imported on first connect only."""
