"""The test rig; its fixtures are in tests/conftest.py, its self-tests in
tests/integration/test_rig.py.

- netns.py        every non-unit test runs in its own network namespace (only `lo`)
- rtsp_server.py  GStreamer RTSP camera, run by Debian's /usr/bin/python3 (not the venv)
- rtsp.py         RtspServer: start/stop/restart it, status(), wait_for(), url();
                  RtspPlayer: a second client that keeps a shared media playing
- process.py      bounded subprocess teardown (SIGTERM, SIGKILL, pipe readers)
- whep_receiver.py  a WHEP viewer in its own process (python -m), prints JSON
- hostile_camera.py  a malicious RTSP camera (the attack suite): huge pictures, endless
                  FU-A, giant SDP and headers, absurd SPS, silence, floods
- streams.py      testsrc_h264(): launch strings for camera quirks (slices, SDP-only
                  SPS/PPS, profiles, B-frames)
- whep_client.py  WhepViewer: aiortc WHEP viewer that decodes or only counts frames
- ice.py          make in-process aiortc peers offer 127.0.0.1
- mosquitto.py    a private MQTT broker
- browser.py      Debian Chromium under Playwright, with the flags that work here
- net.py          free_port(), wait_port()
- prereq.py       skip locally / fail in CI when a system package is missing
"""
