"""MP4 videos that browsers, GitHub and VS Code play: H.264 (libx264, yuv420p) through PyAV, whose wheels carry
their own ffmpeg, so no system codec is needed. Used for rollout videos (``s2r expert --video``, ``s2r demo``) and
for the camera topics of a hardware log (``s2r log export --to mp4``)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

CODEC = "libx264"
PIXEL_FORMAT = "yuv420p"  # 4:2:0 chroma: the H.264 profile every player decodes (4:4:4 is not widely played)
CRF = 23  # libx264's default constant rate factor: visually lossless for these small frames at a few hundred kB


class Mp4Writer:
    """Writes RGB frames (H x W x 3 uint8, one size per video) to an H.264 MP4 at ``fps`` frames per second.

    Odd widths and heights are padded by one edge row or column (4:2:0 needs even sizes). The file is complete
    only after :meth:`close` (also on leaving a ``with`` block)."""

    def __init__(self, path: str | Path, fps: float) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path, self.fps = Path(path), float(fps)
        self.frames = 0
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._size: tuple[int, int] | None = None

    def add(self, rgb: np.ndarray) -> None:
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an H x W x 3 uint8 RGB frame, got {rgb.shape} {rgb.dtype}")
        if self._size is None:
            self._open(rgb.shape[0], rgb.shape[1])
        elif rgb.shape[:2] != self._size:
            raise ValueError(f"{self.path}: frame size {rgb.shape[:2]} differs from the video's {self._size}")
        pad = ((0, rgb.shape[0] % 2), (0, rgb.shape[1] % 2), (0, 0))
        frame = av.VideoFrame.from_ndarray(np.pad(rgb, pad, mode="edge"), format="rgb24")
        assert self._container is not None and self._stream is not None
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def _open(self, height: int, width: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            container = av.open(str(self.path), mode="w")
        except OSError as e:
            raise OSError(f"cannot open {self.path} for writing an MP4 video: {e}") from e
        stream = container.add_stream(CODEC, rate=Fraction(self.fps).limit_denominator(1001))
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = PIXEL_FORMAT
        stream.options = {"crf": str(CRF)}
        self._container, self._stream, self._size = container, stream, (height, width)

    def close(self) -> None:
        if self._container is None:
            return
        assert self._stream is not None
        self._container.mux(self._stream.encode(None))  # flush the encoder's delayed frames
        self._container.close()
        self._container = self._stream = None

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
