"""Plots and reports: value over an episode (paper Fig. 4 style) and advantage histograms per task."""

from recap.report.values import (
    intervention_segments,
    plot_advantage_histograms,
    plot_episode_values,
    value_colors,
)

__all__ = ["intervention_segments", "plot_advantage_histograms", "plot_episode_values", "value_colors"]
