"""Canned gst-rtsp-server launch strings that reproduce real cameras' H.264 habits."""

from __future__ import annotations

from tests.rig.prereq import gst_element_exists

# x264 signals the lowest profile its coding tools need (the caps only set a ceiling), and
# speed-preset=ultrafast turns off CABAC and 8x8 transforms: switch on what makes the
# stream really Main or High, as a camera's would be.
_PROFILE_TOOLS = {
    "constrained-baseline": "",
    "baseline": "",
    "main": "cabac=1",
    "high": "cabac=1:8x8dct=1",
}
PROFILES = tuple(_PROFILE_TOOLS)


def testsrc_h264(
    width: int = 640,
    height: int = 360,
    fps: int = 30,
    gop: int = 60,
    profile: str = "constrained-baseline",
    slices: int = 1,
    bframes: int = 0,
    config_interval: int = -1,
    extra_x264: str = "",
    pattern: str = "smpte",
    bitrate_kbps: int | None = None,
    aggregate_mode: str | None = None,
    overlay: bool = True,
    rtp_loss: float = 0.0,
) -> str:
    """A live test pattern, x264-encoded and RTP-payloaded as `pay0`.

    gop: IDR interval in frames (x264 `key-int-max`).
    slices: slices per picture. x264's sliced threads make one slice per thread, so
        `threads` is pinned to `slices`: the count is exact, not "up to".
    bframes: > 0 makes a stream WebRTC cannot carry (quirk 6); needs profile main/high.
    config_interval: rtph264pay's in-band SPS/PPS: -1 before every IDR *slice* (so with
        slices=4 an IDR picture carries 4 copies: GStreamer's habit, legal H.264), N every
        N seconds, 0 never. x264 itself is told not to repeat them (repeat-headers=0) and
        its output is stream-format=avc, where SPS/PPS live in the caps: with 0 they travel
        *only* in the SDP's sprop-parameter-sets (quirk 3: the gateway must inject them
        before IDRs).
    Every picture starts with an access unit delimiter (NAL 9), as many cameras' do.
    extra_x264: more x264 options, "key=value:key=value" (x264enc option-string).
    rtp_loss: drop this fraction of the RTP packets at random after payloading (sequence
        numbers already assigned), as a lossy network would: the kernel here has no netem.
    overlay: burn the running time into the picture (timeoverlay, from the pango plugin
        in gstreamer1.0-x), so screenshots prove the picture moves; left out when missing.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r} not in {PROFILES}")
    if bframes and profile in ("constrained-baseline", "baseline"):
        raise ValueError("B-frames need profile main or high")
    if slices < 1:
        raise ValueError("slices must be >= 1")
    source = (
        f"videotestsrc is-live=true pattern={pattern} "
        f"! video/x-raw,width={width},height={height},framerate={fps}/1"
    )
    if overlay and gst_element_exists("timeoverlay"):
        font_px = max(8, height // 12)
        source += f' ! timeoverlay halignment=left valignment=top font-desc="Sans {font_px}px"'
    # repeat-headers=0: x264 would put SPS/PPS in-band itself; leave that to config_interval.
    x264_options = (f"slices={slices}", "repeat-headers=0", _PROFILE_TOOLS[profile], extra_x264)
    options = ":".join(o for o in x264_options if o)
    encoder = (
        f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} "
        f"bframes={bframes} threads={slices} sliced-threads=true "
        f'option-string="{options}"'
    )
    if bitrate_kbps is not None:
        encoder += f" bitrate={bitrate_kbps}"
    caps = f"video/x-h264,stream-format=avc,alignment=au,profile={profile}"
    payloader = f"rtph264pay name=pay0 pt=96 config-interval={config_interval}"
    if aggregate_mode is not None:
        payloader += f" aggregate-mode={aggregate_mode}"
    if rtp_loss:
        # gst-rtsp-server streams from the element named pay0: the lossy link is that.
        payloader = payloader.replace("name=pay0", "name=h264pay")
        payloader += f" ! identity name=pay0 drop-probability={rtp_loss}"
    return f"( {source} ! {encoder} ! {caps} ! {payloader} )"


testsrc_h264.__test__ = False  # type: ignore[attr-defined]  # "test..." but not a test
