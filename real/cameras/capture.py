"""The capture thread every camera shares: a slow or silent camera never stalls the control loop.

A subclass opens its device in ``_open``, returns the next frame (or None on a timeout) from ``_grab`` and closes
in ``_close``; this class runs ``_grab`` on a background thread, keeps the newest frame, counts frames, gaps,
timeouts and recoveries, and calls ``_recover`` after ``reconnect_after`` consecutive empty waits.

Two delivery modes: a live camera keeps only the newest unread frame (an older unread one is dropped and counted);
a ``lossless`` source (a recording, a video file) makes the capture thread wait for the reader, so every frame is
delivered once and in order.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import deque

from real.cameras.frame import CameraError, CameraStats, EndOfStream, Frame, FrameTimeout, StaleFrame
from robot.intrinsics import Intrinsics

#: Frames a lossless source may read ahead of its consumer.
LOSSLESS_QUEUE = 4


class ThreadedCamera(ABC):
    """Base class: ``connect()`` / ``disconnect()`` (or ``with``), ``read(timeout)``, ``read_latest(max_age)``.

    ``grab_timeout_s``: how long one ``_grab`` waits; ``reconnect_after``: consecutive timeouts (or driver errors)
    after which ``_recover`` is called.
    """

    def __init__(
        self, name: str, *, lossless: bool = False, grab_timeout_s: float = 1.0, reconnect_after: int = 3
    ) -> None:
        self.name = name
        self.lossless = lossless
        self.grab_timeout_s = grab_timeout_s
        self.reconnect_after = reconnect_after
        self.stats = CameraStats()
        self._cond = threading.Condition()
        self._queue: deque[Frame] = deque()
        self._latest: Frame | None = None
        self._last_number: int | None = None
        self._ended: EndOfStream | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- to implement ------------------------------------------------------------------------------------------
    @abstractmethod
    def _open(self) -> None:
        """Open and start the device; raise :class:`CameraError` with the reason when it cannot."""

    @abstractmethod
    def _grab(self, timeout_s: float) -> Frame | None:
        """The next frame, None after ``timeout_s`` without one; raise :class:`EndOfStream` at the end."""

    @abstractmethod
    def _close(self) -> None:
        """Stop and release the device; must not raise."""

    def _recover(self) -> None:
        """Bring a silent device back; by default close and open it again."""
        self._close()
        self._open()

    @property
    @abstractmethod
    def intrinsics(self) -> Intrinsics:
        """Intrinsics of the color image (valid after ``connect``)."""

    @property
    def depth_scale(self) -> float | None:
        """Metres per raw depth unit, or None for a camera without depth."""
        return None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._thread is not None

    def connect(self) -> ThreadedCamera:
        """Open the device and start capturing; a no-op when already connected."""
        if self._thread is not None:
            return self
        self._open()
        self._stop.clear()
        with self._cond:
            self._queue.clear()
            self._latest, self._last_number, self._ended = None, None, None
        self.stats = CameraStats()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self._thread.start()
        return self

    def disconnect(self) -> None:
        """Stop the capture thread and close the device; safe to call twice."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        thread.join(timeout=max(5.0, 3 * self.grab_timeout_s))
        self._thread = None
        self._close()

    def __enter__(self) -> ThreadedCamera:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    # -- reading -----------------------------------------------------------------------------------------------
    def read(self, timeout: float = 1.0) -> Frame:
        """The next frame not returned before; waits up to ``timeout`` s (:class:`FrameTimeout`).

        Raises :class:`EndOfStream` once a recording has delivered its last frame.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._queue:
                if self._ended is not None:
                    raise EndOfStream(str(self._ended), self._ended.frames)
                if self._thread is None:
                    raise CameraError(f"camera {self.name!r} is not connected; call connect() first")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FrameTimeout(
                        f"camera {self.name!r}: no new frame within {timeout:.3f} s "
                        f"({self.stats.timeouts} timeouts so far; last error: {self.stats.last_error})"
                    )
                self._cond.wait(remaining)
            frame = self._queue.popleft()
            self._cond.notify_all()
            return frame

    def read_latest(self, max_age: float = 0.1) -> Frame:
        """The newest frame without waiting; :class:`StaleFrame` if there is none or it is older than
        ``max_age`` s (host clock, from its capture when the camera's clock is the host's, else from its arrival:
        :attr:`Frame.taken_ns`). Frames older than it are marked read."""
        with self._cond:
            frame = self._latest
            if frame is not None:
                self._queue.clear()
                self._cond.notify_all()
        if frame is None:
            raise StaleFrame(f"camera {self.name!r}: no frame received yet")
        age = (time.monotonic_ns() - frame.taken_ns) / 1e9
        if age > max_age:
            raise StaleFrame(
                f"camera {self.name!r}: newest frame (#{frame.frame_number}) is {age * 1e3:.0f} ms old, "
                f"more than {max_age * 1e3:.0f} ms"
            )
        return frame

    # -- capture thread ----------------------------------------------------------------------------------------
    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                frame = self._grab(self.grab_timeout_s)
            except EndOfStream as end:
                with self._cond:
                    self._ended = end
                    self._cond.notify_all()
                return
            except Exception as exc:  # a driver error: counted, then handled like a silent camera
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                frame = None
            if frame is None:
                if self._stop.is_set():
                    return
                self.stats.timeouts += 1
                failures += 1
                if failures >= self.reconnect_after:
                    failures = 0
                    self.stats.reconnects += 1
                    try:
                        self._recover()
                    except Exception as exc:
                        self.stats.last_error = f"recovery failed: {type(exc).__name__}: {exc}"
                        self._stop.wait(self.grab_timeout_s)
                continue
            failures = 0
            self._publish(frame)

    def _publish(self, frame: Frame) -> None:
        with self._cond:
            if self.lossless:
                while len(self._queue) >= LOSSLESS_QUEUE and not self._stop.is_set():
                    self._cond.wait(0.1)
            elif self._queue:
                self.stats.dropped += len(self._queue)
                self._queue.clear()
            if self._last_number is not None and frame.frame_number > self._last_number + 1:
                self.stats.dropped += frame.frame_number - self._last_number - 1
            self._last_number = frame.frame_number
            self._queue.append(frame)
            self._latest = frame
            self.stats.record(frame.host_time_ns)
            self._cond.notify_all()
