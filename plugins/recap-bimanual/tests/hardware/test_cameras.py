"""Threaded cameras: the OpenCV path (read from a video file here) and the synthetic test pattern."""

from __future__ import annotations

import time

import numpy as np
import pytest
from recap_bimanual.hardware.cameras import CameraError, OpenCVCamera, SyntheticCamera

cv2 = pytest.importorskip("cv2")


def test_opencv_camera_delivers_rgb_frames_resized_and_timestamped(tmp_path):
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for _ in range(30):
        bgr = np.zeros((48, 64, 3), np.uint8)
        bgr[..., 2] = 200  # red in BGR
        writer.write(bgr)
    writer.release()
    cam = OpenCVCamera("cam_high", path, height=24, width=32)
    cam.start()
    try:
        frame, stamp, count = cam.latest()
        assert frame.shape == (24, 32, 3) and frame.dtype == np.uint8
        assert frame[..., 0].mean() > 150 and frame[..., 2].mean() < 50  # converted to RGB
        assert 0 < time.monotonic() - stamp < 5 and count >= 1
    finally:
        cam.stop()


def test_opencv_camera_that_cannot_open_says_how_to_check():
    with pytest.raises(CameraError, match="v4l2-ctl"):
        OpenCVCamera("cam_high", "/dev/no-such-camera", 24, 32).start()


def test_synthetic_camera_runs_at_its_rate_with_a_known_pattern():
    cam = SyntheticCamera("cam_left_wrist", 12, 16, fps=50, seed=2)
    cam.start()
    time.sleep(0.2)
    frame, stamp, count = cam.latest()
    cam.stop()
    assert 6 <= count <= 14  # ~10 frames in 0.2 s at 50 fps
    k = count - 1
    assert frame[0, 3, 0] == ((3 + k) * 4) % 256 and frame[0, 0, 2] == 80
