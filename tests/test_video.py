"""Videos play everywhere: H.264 in yuv420p, read back by an independent decoder (OpenCV's ffmpeg) frame for frame."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from real.video import Mp4Writer


def _codec(path) -> tuple[str, str, float, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return stream.codec_context.name, stream.codec_context.pix_fmt, float(stream.average_rate), frames


def test_frames_are_h264_and_read_back(tmp_path):
    rng = np.random.default_rng(0)
    frames = [np.full((48, 64, 3), (40 * i, 255 - 40 * i, 128), np.uint8) for i in range(6)]
    frames.append(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    with Mp4Writer(tmp_path / "v.mp4", fps=10) as writer:
        for f in frames:
            writer.add(f)
    assert _codec(tmp_path / "v.mp4") == ("h264", "yuv420p", 10.0, 7)
    cap = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    ok, first = cap.read()
    cap.release()
    assert ok and first.shape == (48, 64, 3)
    # flat colours survive the 4:2:0 encoding to a few levels (BGR from OpenCV)
    assert np.abs(first[..., ::-1].astype(int) - frames[0]).mean() < 4


def test_odd_sizes_are_padded_and_a_measured_rate_kept(tmp_path):
    with Mp4Writer(tmp_path / "odd.mp4", fps=9.87) as writer:
        for _ in range(3):
            writer.add(np.zeros((45, 61, 3), np.uint8))
    name, pix_fmt, rate, frames = _codec(tmp_path / "odd.mp4")
    assert (name, pix_fmt, frames) == ("h264", "yuv420p", 3) and rate == pytest.approx(9.87, abs=0.01)


def test_bad_frames_are_refused(tmp_path):
    writer = Mp4Writer(tmp_path / "bad.mp4", fps=10)
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        writer.add(np.zeros((4, 4), np.uint8))
    writer.add(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="differs"):
        writer.add(np.zeros((8, 10, 3), np.uint8))
    writer.close()
    with pytest.raises(ValueError, match="fps"):
        Mp4Writer(tmp_path / "x.mp4", fps=0)
