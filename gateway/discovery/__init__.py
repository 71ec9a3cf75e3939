"""ONVIF camera discovery on the LAN (WS-Discovery): `camgate discover` and GET /api/discover."""
