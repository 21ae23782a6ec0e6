"""What every camera hands out: frames with timestamps, its intrinsics, its statistics and its errors."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class CameraError(RuntimeError):
    """A camera could not be opened, configured or read; the message says which camera and why."""


class FrameTimeout(CameraError):
    """No new frame arrived within the timeout."""


class StaleFrame(CameraError):
    """The newest frame is older than the caller accepts (or there is none yet)."""


class EndOfStream(CameraError):
    """A recording or video file has no more frames; ``frames`` says how many it delivered."""

    def __init__(self, message: str, frames: int) -> None:
        super().__init__(message)
        self.frames = frames


@dataclass(frozen=True)
class Frame:
    """One capture. ``color``: HxWx3 uint8 RGB; ``depth``: HxW float32 metres aligned to color (0 = no reading),
    or None for a camera without depth. ``host_time_ns``: ``time.monotonic_ns()`` when the frame reached the host;
    ``device_time_ms``: the camera's own timestamp; ``frame_number``: the camera's counter;
    ``capture_time_ns``: when the image was taken, on the host's monotonic clock, for a camera whose timestamps are
    in the host's time (a RealSense in global or system time); None when only the arrival is known."""

    color: np.ndarray
    depth: np.ndarray | None
    host_time_ns: int
    device_time_ms: float
    frame_number: int
    capture_time_ns: int | None = None

    @property
    def taken_ns(self) -> int:
        """Host monotonic time of the capture when known, else of the arrival (a lower bound on the frame's age)."""
        return self.host_time_ns if self.capture_time_ns is None else self.capture_time_ns


@dataclass
class CameraStats:
    """Counters of the capture thread. ``fps``: frames per second over the last ``window`` frames (host clock);
    ``dropped``: frames the camera numbered but the host never saw (gaps in frame numbers) plus frames overwritten
    before anyone read them; ``timeouts``: waits that ended without a frame; ``incomplete``: framesets skipped
    because a stream was missing; ``reconnects``: recoveries tried."""

    frames: int = 0
    dropped: int = 0
    timeouts: int = 0
    incomplete: int = 0
    reconnects: int = 0
    fps: float = 0.0
    last_error: str | None = None
    window: int = 30
    _times: list[int] = field(default_factory=list, repr=False)

    def record(self, host_time_ns: int) -> None:
        self.frames += 1
        self._times.append(host_time_ns)
        if len(self._times) > self.window:
            del self._times[0]
        if len(self._times) >= 2:
            span = (self._times[-1] - self._times[0]) / 1e9
            self.fps = (len(self._times) - 1) / span if span > 0 else 0.0

    def as_dict(self) -> dict[str, float | int | str | None]:
        return {
            "frames": self.frames,
            "dropped": self.dropped,
            "timeouts": self.timeouts,
            "incomplete": self.incomplete,
            "reconnects": self.reconnects,
            "fps": round(self.fps, 2),
            "last_error": self.last_error,
        }
