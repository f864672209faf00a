"""Cameras captured by background threads; the control loop takes the newest frame without waiting.

Each camera keeps its latest frame and the monotonic time it arrived, so an observation can say how old each
image is. :class:`OpenCVCamera` reads a V4L2 device (or a video file) through OpenCV; :class:`SyntheticCamera`
renders a moving test pattern at a fixed rate, for tests and benchmarks without cameras.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import numpy as np

from recap.errors import RecapError


class CameraError(RecapError, RuntimeError):
    """A camera cannot be opened or stopped delivering frames."""


class Camera(Protocol):
    name: str

    def start(self) -> None: ...

    def latest(self) -> tuple[np.ndarray, float, int]:
        """(frame uint8 [H, W, 3] RGB, monotonic capture time, frame counter)."""
        ...

    def stop(self) -> None: ...


class _ThreadedCamera:
    """Shared machinery: a thread calls ``_grab`` and publishes the frame under a lock."""

    def __init__(self, name: str, height: int, width: int) -> None:
        self.name, self.height, self.width = name, height, width
        self._lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._stamp = 0.0
        self._count = 0
        self._running = False
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _grab(self) -> np.ndarray:
        """One frame from the source; each subclass (OpenCV, video file, synthetic) grabs its own way."""
        raise NotImplementedError  # abstract

    def _open(self) -> None:
        pass

    def _release(self) -> None:
        pass

    def start(self, timeout_s: float = 5.0) -> None:
        if self._running:
            return
        self._open()
        self._running = True
        self._thread = threading.Thread(target=self._loop, name=f"camera {self.name}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            self.stop()
            raise CameraError(
                f"camera {self.name!r} delivered no frame within {timeout_s} s ({self._error or 'no error'})"
            )

    def _loop(self) -> None:
        while self._running:
            try:
                frame = self._grab()
            except Exception as exc:  # the loop must not die silently: latest() reports it
                self._error = exc
                time.sleep(0.01)
                continue
            if frame.shape[:2] != (self.height, self.width):
                frame = _resize(frame, self.height, self.width)
            with self._lock:
                self._frame, self._stamp, self._count = frame, time.monotonic(), self._count + 1
            self._ready.set()

    def latest(self) -> tuple[np.ndarray, float, int]:
        with self._lock:
            if self._frame is None:
                raise CameraError(
                    f"camera {self.name!r} has no frame yet (started: {self._running}; "
                    f"last error: {self._error})"
                )
            return self._frame, self._stamp, self._count

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        self._release()


def _resize(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


class OpenCVCamera(_ThreadedCamera):
    """A V4L2 camera (``device`` = index like 0 or a path like /dev/video0) or a video file, via OpenCV."""

    def __init__(self, name: str, device: int | str, height: int, width: int, fps: int = 30) -> None:
        super().__init__(name, height, width)
        self.device, self.fps = device, fps
        self._cap = None

    def _open(self) -> None:
        try:
            import cv2
        except ImportError as exc:
            raise CameraError(
                "OpenCV is needed for real cameras: pip install opencv-python-headless"
            ) from exc
        cap = cv2.VideoCapture(self.device)
        if not cap.isOpened():
            raise CameraError(
                f"camera {self.name!r}: cannot open {self.device!r}; list devices with "
                "`v4l2-ctl --list-devices` and check permissions (group video)"
            )
        cap.set(cv2.CAP_PROP_FPS, self.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a queue of old ones
        self._cap = cap

    def _grab(self) -> np.ndarray:
        import cv2

        ok, bgr = self._cap.read()
        if not ok:
            raise CameraError(f"camera {self.name!r} ({self.device!r}) returned no frame")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class SyntheticCamera(_ThreadedCamera):
    """A deterministic moving pattern at ``fps``: frame k is a colour ramp shifted by k pixels.

    Pixel (y, x) of frame k = ((x + k) * 4 mod 256, y * 255 / H, seed * 40 mod 256), so tests can check
    which frame an observation carries.
    """

    def __init__(self, name: str, height: int, width: int, fps: int = 30, seed: int = 0) -> None:
        super().__init__(name, height, width)
        self.fps, self.seed = fps, seed
        self._k = 0
        self._next = 0.0
        ys = np.linspace(0, 255, height, dtype=np.float32)[:, None]
        self._green = np.broadcast_to(ys, (height, width)).astype(np.uint8)

    def _grab(self) -> np.ndarray:
        now = time.monotonic()
        if self._next == 0.0:
            self._next = now
        if self._next > now:
            time.sleep(self._next - now)
        self._next += 1.0 / self.fps
        frame = np.empty((self.height, self.width, 3), dtype=np.uint8)
        frame[..., 0] = ((np.arange(self.width) + self._k) * 4 % 256).astype(np.uint8)[None, :]
        frame[..., 1] = self._green
        frame[..., 2] = (self.seed * 40) % 256
        self._k += 1
        return frame
