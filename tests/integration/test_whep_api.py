"""WHEP signaling and the JSON API against a real gateway and real aiortc peers."""

from __future__ import annotations

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection

from tests.integration.conftest import GatewayFactory


async def recvonly_offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def test_whep_post_patch_delete(start_gateway: GatewayFactory) -> None:
    gw = await start_gateway()
    pc, offer = await recvonly_offer()
    async with aiohttp.ClientSession(gw.base_url) as http:
        r = await http.post(
            "/api/cameras/demo/whep", data=offer, headers={"Content-Type": "application/sdp"}
        )
        assert r.status == 201, await r.text()
        assert r.content_type == "application/sdp"
        location = r.headers["Location"]
        assert location.startswith("/api/cameras/demo/whep/")
        assert "a=candidate:" in await r.text()
        assert gw.hub("demo").viewers == 1

        frag = (
            "a=ice-ufrag:abcd\r\na=ice-pwd:" + "x" * 24 + "\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\n"
            "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
        )
        r = await http.patch(
            location, data=frag, headers={"Content-Type": "application/trickle-ice-sdpfrag"}
        )
        # The offer's ufrag differs from "abcd": that is an ICE restart, which is refused.
        assert r.status == 422
        ufrag = next(
            line.split(":", 1)[1] for line in offer.splitlines() if line.startswith("a=ice-ufrag:")
        )
        r = await http.patch(
            location,
            data=frag.replace("abcd", ufrag),
            headers={"Content-Type": "application/trickle-ice-sdpfrag"},
        )
        assert r.status == 204
        r = await http.patch(
            location, data="a=end-of-candidates\r\n", headers={"Content-Type": "text/plain"}
        )
        assert r.status == 415

        r = await http.delete(location)
        assert r.status == 200
        assert gw.hub("demo").viewers == 0
        r = await http.delete(location)
        assert r.status == 404
        r = await http.patch(
            location,
            data="a=end-of-candidates\r\n",
            headers={"Content-Type": "application/trickle-ice-sdpfrag"},
        )
        assert r.status == 404
    await pc.close()


async def test_whep_errors(start_gateway: GatewayFactory) -> None:
    gw = await start_gateway()
    pc, offer = await recvonly_offer()
    sdp = {"Content-Type": "application/sdp"}
    async with aiohttp.ClientSession(gw.base_url) as http:
        r = await http.post("/api/cameras/nope/whep", data=offer, headers=sdp)
        assert r.status == 404 and (await r.json())["error"] == "unknown camera"
        r = await http.post(
            "/api/cameras/demo/whep", data=offer, headers={"Content-Type": "application/json"}
        )
        assert r.status == 415
        for junk in [
            "",
            "hello",
            "v=0\r\nm=video",
            offer.replace("H264", "VP9"),
            "\x00\xff" * 100,
            "v=0\r\n" + "a=x\r\n" * 20000,
        ]:
            r = await http.post(
                "/api/cameras/demo/whep", data=junk.encode("utf-8", "replace"), headers=sdp
            )
            assert r.status in (400, 413), (junk[:20], r.status)
            assert "error" in await r.json()
        r = await http.post("/api/cameras/demo/whep", data=b"v" * 2_000_000, headers=sdp)
        assert r.status == 413
        r = await http.patch(
            "/api/cameras/demo/whep/nosuchsession",
            data="",
            headers={"Content-Type": "application/trickle-ice-sdpfrag"},
        )
        assert r.status == 404
        r = await http.get("/api/nothing-here")
        assert r.status == 404
        # The gateway is unharmed: a good offer still works.
        r = await http.post("/api/cameras/demo/whep", data=offer, headers=sdp)
        assert r.status == 201
        assert gw.hub("demo").viewers == 1
    await pc.close()


async def test_api_cameras_and_health(start_gateway: GatewayFactory) -> None:
    secret = "s3cr3t-pw"
    gw = await start_gateway(
        cameras=[
            {"name": "demo", "source": "demo", "preload": True},
            {"name": "cam2", "source": f"rtsp://admin:{secret}@127.0.0.1:9/x"},
        ]
    )
    await gw.hub("demo").wait_live(20)
    async with aiohttp.ClientSession(gw.base_url) as http:
        r = await http.get("/api/health")
        health = await r.json()
        assert r.status == 200 and health["status"] == "ok" and health["cameras"] == 2
        r = await http.get("/api/cameras")
        body = await r.text()
        assert secret not in body and "admin" not in body
        cams = {c["name"]: c for c in await r.json()}
        demo = cams["demo"]
        assert demo["state"] == "live" and demo["codec"] == "H264"
        assert (demo["width"], demo["height"]) == (1280, 720)
        assert demo["whep_url"] == "/api/cameras/demo/whep"
        for key in ("profile", "fps", "bitrate_kbps", "viewers", "dropped_frames"):
            assert key in demo
        assert cams["cam2"]["state"] == "idle"
        assert cams["cam2"]["source"] == "rtsp://127.0.0.1:9/x"
        r = await http.get("/api/cameras/cam2")
        assert (await r.json())["name"] == "cam2"
        r = await http.get("/")
        assert r.status == 200 and "text/html" in r.content_type
        assert "Content-Security-Policy" in r.headers
        r = await http.get("/../../etc/passwd")
        assert r.status == 404
