"""Value plots: the predicted value over an episode (rises green, drops red, as in the pi*0.6 paper's Fig. 4)
with intervention segments shaded and the empirical return beside it; advantage histograms per task with the
threshold eps_l marked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

RISE, DROP, FLAT = "#2ca02c", "#d62728", "#7f7f7f"


def _np(x: torch.Tensor | np.ndarray | Sequence[float]) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def intervention_segments(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges where ``flags`` is true."""
    flags = np.asarray(flags, dtype=bool)
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def value_colors(values: np.ndarray, smooth: int = 1, tol: float = 1e-4) -> list[str]:
    """One colour per segment t -> t+1: green where the (smoothed) value rises, red where it drops."""
    v = np.asarray(values, dtype=np.float64)
    if smooth > 1 and v.size >= smooth:
        v = np.convolve(
            np.pad(v, (smooth // 2, smooth - 1 - smooth // 2), mode="edge"), np.ones(smooth) / smooth, "valid"
        )
    d = np.diff(v)
    return [RISE if x > tol else DROP if x < -tol else FLAT for x in d]


def plot_episode_values(
    values: torch.Tensor | np.ndarray,
    path: str | Path,
    *,
    mc_return: torch.Tensor | np.ndarray | None = None,
    is_intervention: torch.Tensor | np.ndarray | None = None,
    advantage: torch.Tensor | np.ndarray | None = None,
    indicator: torch.Tensor | np.ndarray | None = None,
    fps: float = 50.0,
    title: str = "",
    smooth: int = 5,
) -> Path:
    """Write a PNG of V(o_t) over one episode.

    Top panel: the value, each segment green when the value rises and red when it drops (over a ``smooth``-step
    moving average), the empirical normalised return R_t dashed beside it, intervention steps shaded. Bottom
    panel (when ``advantage`` is given): the advantage with the steps labelled I = 1 marked.
    """
    v = _np(values).astype(np.float64)
    t = np.arange(v.size) / fps
    rows = 2 if advantage is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(9, 3.2 * rows), sharex=True, squeeze=False)
    ax = axes[0, 0]
    if v.size > 1:
        points = np.stack([t, v], 1)
        segments = np.stack([points[:-1], points[1:]], 1)
        ax.add_collection(LineCollection(segments, colors=value_colors(v, smooth), linewidths=2.0))
    else:
        ax.plot(t, v, "o", color=FLAT)
    ax.plot([], [], color=RISE, lw=2, label="value rises")
    ax.plot([], [], color=DROP, lw=2, label="value drops")
    if mc_return is not None:
        ax.plot(t, _np(mc_return), "--", color="black", lw=1.2, label="empirical return $R_t$")
    flags = _np(is_intervention) if is_intervention is not None else np.zeros(v.size, bool)
    for i, (a, b) in enumerate(intervention_segments(flags)):
        ax.axvspan(a / fps, b / fps, color="#1f77b4", alpha=0.15, label="intervention" if i == 0 else None)
    ax.set_xlim(0, max(t[-1], 1.0 / fps) if v.size else 1.0)
    ax.set_ylim(-1.05, 0.05)
    ax.set_ylabel("normalised value")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    if advantage is not None:
        ax2 = axes[1, 0]
        adv = _np(advantage)
        ax2.plot(t, adv, color="black", lw=1.0, label="advantage")
        if indicator is not None:
            ind = _np(indicator).astype(bool)
            ax2.scatter(t[ind], adv[ind], s=6, color=RISE, label="I = 1", zorder=3)
        for a, b in intervention_segments(flags):
            ax2.axvspan(a / fps, b / fps, color="#1f77b4", alpha=0.15)
        ax2.axhline(0, color=FLAT, lw=0.8)
        ax2.set_ylabel("advantage")
        ax2.legend(loc="lower right", fontsize=8)
        ax2.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time [s]")
    return _save(fig, path)


def plot_advantage_histograms(
    advantages: Mapping[str, torch.Tensor | np.ndarray],
    thresholds: Mapping[str, float],
    path: str | Path,
    *,
    bins: int = 60,
) -> Path:
    """Write a PNG with one advantage histogram per task and its threshold eps_l (vertical line)."""
    tasks = sorted(advantages)
    if not tasks:
        raise ValueError("no advantages to plot; label the store with `recap label` first")
    fig, axes = plt.subplots(len(tasks), 1, figsize=(7, 2.6 * len(tasks)), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks, strict=True):
        a = _np(advantages[task]).ravel()
        ax.hist(a, bins=bins, color="#4c72b0", alpha=0.8)
        if task in thresholds:
            eps = thresholds[task]
            share = float((a > eps).mean()) if a.size else 0.0
            ax.axvline(eps, color=DROP, lw=1.5, label=f"threshold {eps:.4f} ({share:.0%} above)")
            ax.legend(fontsize=8)
        ax.set_title(task, fontsize=9)
        ax.set_ylabel("steps")
    axes[-1, 0].set_xlabel("advantage")
    return _save(fig, path)


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
