"""MQTT for home automation: PTZ commands, snapshots, status, Home Assistant discovery."""
