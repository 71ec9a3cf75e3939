"""Talk back: an admin's microphone, from the browser, to a camera's ONVIF audio
backchannel (ONVIF Streaming Specification 5.3)."""
