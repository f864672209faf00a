"""Threaded cameras: the OpenCV path (read from a video file here) and the synthetic test pattern.

Only the tests that drive OpenCV itself skip without it; the synthetic camera and the missing-OpenCV message
run everywhere.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest
from recap_bimanual.hardware.cameras import CameraError, OpenCVCamera, SyntheticCamera


def test_opencv_camera_delivers_rgb_frames_resized_and_timestamped(tmp_path):
    cv2 = pytest.importorskip("cv2")
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
    pytest.importorskip("cv2")
    with pytest.raises(CameraError, match="v4l2-ctl"):
        OpenCVCamera("cam_high", "/dev/no-such-camera", 24, 32).start()


def test_opencv_camera_without_opencv_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError, installed or not
    with pytest.raises(CameraError, match="pip install opencv-python-headless"):
        OpenCVCamera("cam_high", 0, 24, 32).start()


def test_synthetic_camera_never_outruns_its_rate_and_draws_a_known_pattern():
    """Checked without assuming an idle CPU: a loaded machine may deliver fewer frames, never more."""
    fps = 50
    cam = SyntheticCamera("cam_left_wrist", 12, 16, fps=fps, seed=2)
    started = time.monotonic()
    cam.start()
    try:
        count = 0
        while count < 5 and time.monotonic() - started < 30:
            time.sleep(0.02)
            frame, stamp, count = cam.latest()
        elapsed = time.monotonic() - started
    finally:
        cam.stop()
    assert count >= 5, f"only {count} frames in {elapsed:.1f} s"
    assert count <= elapsed * fps + 1  # frame k is not grabbed before k / fps seconds
    assert started <= stamp <= started + elapsed
    k = count - 1
    assert frame[0, 3, 0] == ((3 + k) * 4) % 256 and frame[0, 0, 2] == 80
    assert frame[11, 0, 1] == 255 and frame[0, 0, 1] == 0  # the green ramp runs down the rows
