"""Value plots: segments, rise/drop colours, and that the PNGs are written."""

import numpy as np
import torch

from recap.report import intervention_segments, plot_advantage_histograms, plot_episode_values, value_colors
from recap.report.values import DROP, FLAT, RISE


def test_intervention_segments_are_half_open_ranges():
    flags = np.array([0, 1, 1, 0, 0, 1, 0, 1], bool)
    assert intervention_segments(flags) == [(1, 3), (5, 6), (7, 8)]
    assert intervention_segments(np.zeros(4, bool)) == []


def test_rises_are_green_and_drops_red():
    v = np.array([-0.9, -0.8, -0.7, -0.7, -0.75, -0.8])
    assert value_colors(v) == [RISE, RISE, FLAT, DROP, DROP]


def test_plots_are_written(tmp_path):
    t = torch.arange(100)
    values = -1 + t / 100 - 0.2 * ((t > 40) & (t < 60))
    flags = (t > 70) & (t < 80)
    png = plot_episode_values(values, tmp_path / "v.png", mc_return=-(99 - t) / 100, is_intervention=flags,
                              advantage=torch.randn(100), indicator=torch.rand(100) > 0.7)  # fmt: skip
    hist = plot_advantage_histograms(
        {"a": torch.randn(500), "b": torch.randn(300)}, {"a": 0.5}, tmp_path / "h.png"
    )
    for p in (png, hist):
        assert p.read_bytes()[:4] == b"\x89PNG" and p.stat().st_size > 5000
