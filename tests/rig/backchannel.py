"""Control tests/rig/backchannel_server.py (an ONVIF camera with a speaker) and look at
what it heard."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np

from tests.rig.rtsp import RtspServer
from tests.rig.streams import testsrc_h264

SCRIPT = Path(__file__).with_name("backchannel_server.py")
HEARD_RATES = {"pcmu": 8000, "pcma": 8000, "aac": 16000}


class BackchannelCamera(RtspServer):
    """A camera at `url("/cam")` whose backchannel (`codec`: pcmu, pcma, aac or none)
    writes what it hears to `heard_file`; `heard()` reads it as 16-bit mono samples."""

    def __init__(
        self, heard_file: Path, codec: str = "pcmu", refuse_setup: bool = False, **kwargs: Any
    ) -> None:
        # A talk-only client sets up the backchannel alone: the unlinked video payloader
        # would end the whole media with not-linked (GStreamer), killing the backchannel.
        video = testsrc_h264().replace(" ! rtph264pay", " ! tee allow-not-linked=true ! rtph264pay")
        super().__init__({"/cam": video}, shared=False, **kwargs)
        self.heard_file = heard_file
        self.codec = codec
        self.refuse_setup = refuse_setup

    def _command(self) -> list[str]:
        cmd = super()._command()
        cmd[1] = str(SCRIPT)
        cmd += ["--backchannel", self.codec, "--out", str(self.heard_file)]
        if self.refuse_setup:
            cmd.append("--refuse-backchannel-setup")
        return cmd

    @property
    def rate(self) -> int:
        return HEARD_RATES[self.codec]

    def heard(self) -> np.ndarray:
        """Every sample the camera's speaker got so far."""
        if not self.heard_file.exists():
            return np.zeros(0, dtype=np.int16)
        if self.codec == "aac":
            return _decode_adts(self.heard_file)
        data = self.heard_file.read_bytes()
        return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")

    def backchannel_setups(self) -> int:
        """SETUPs of the backchannel (the video is stream=0)."""
        return sum(
            1
            for e in self.events
            if e.get("event") == "setup" and not str(e.get("uri", "")).endswith("stream=0")
        )

    def count(self, event: str) -> int:
        return sum(1 for e in self.events if e.get("event") == event)


def _decode_adts(path: Path) -> np.ndarray:
    import av

    chunks: list[np.ndarray] = []
    try:
        with av.open(str(path), format="aac") as container:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
    except av.error.FFmpegError:
        pass  # a frame cut short at the end of the file: what came before counts
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    """The strongest frequency in `samples`, in Hz."""
    signal = samples.astype(np.float64)
    signal -= signal.mean()
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1 / rate)[int(np.argmax(spectrum))])


def loud_samples(samples: np.ndarray, threshold: int = 500) -> int:
    """How many samples carry sound (the tone, not silence), counted in 10 ms blocks."""
    block = 80
    usable = len(samples) // block * block
    blocks = np.abs(samples[:usable].astype(np.int32)).reshape(-1, block).max(axis=1)
    return int((blocks > threshold).sum()) * block


def write_tone_wav(
    path: Path, seconds: float, frequency: float = 1000.0, rate: int = 48000
) -> Path:
    """A mono 16-bit WAV of a sine tone at about a quarter of full scale."""
    import wave

    t = np.arange(int(seconds * rate)) / rate
    samples = (np.sin(2 * np.pi * frequency * t) * 8000).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return path


CameraFactory = Callable[..., Awaitable[BackchannelCamera]]


@asynccontextmanager
async def backchannel_cameras(tmp_path: Path) -> AsyncIterator[CameraFactory]:
    """`camera = await start(codec="pcma")`; every camera is stopped at the end."""
    cameras: list[BackchannelCamera] = []

    async def start(**kwargs: Any) -> BackchannelCamera:
        heard = tmp_path / f"heard-{len(cameras)}.s16"
        camera = BackchannelCamera(heard, **kwargs)
        cameras.append(camera)
        await camera.start()
        return camera

    try:
        yield start
    finally:
        for camera in cameras:
            await camera.stop()
