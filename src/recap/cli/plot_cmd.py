"""``recap plot-values STORE --episode ID``: value over an episode (Fig. 4 style) and advantage histograms."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import torch
import tyro

from recap import rl
from recap.data import EpisodeStore, keys
from recap.errors import LabelError
from recap.report import plot_advantage_histograms, plot_episode_values


def plot_values(
    store: tyro.conf.Positional[Path],
    episode: str,
    labels: str | None = None,
    value: Path | None = None,
    out: Path = Path("plots"),
) -> int:
    """Write OUT/value_<episode>.png (value over the episode, rises green, drops red, interventions shaded,
    empirical return dashed) and OUT/advantages.png (advantage histogram per task with its threshold).

    Args:
        store: the store directory.
        episode: the episode id to plot.
        labels: a label set from `recap label` (default: the newest one); gives values, advantages, thresholds.
        value: a value checkpoint to predict the episode's values with instead of reading a label set.
        out: output directory.
    """
    st = EpisodeStore.open(store)
    meta = st.meta(episode)
    ep = st.load(episode)
    flags = ep.steps[keys.IS_INTERVENTION]
    max_len = max(st.max_length_per_task().get(meta.task, meta.length), meta.length)
    mc_return = (
        rl.normalized_mc_returns(meta.length, bool(meta.success), max_len)
        if meta.success is not None
        else None
    )
    title = f"{episode} - {meta.task} - {'success' if meta.success else 'failure' if meta.success is False else 'unlabelled'}"
    written = []
    if value is not None:
        from recap.train.checkpoint import load_value
        from recap.train.labeling import observation

        with torch.inference_mode():
            v = load_value(value).predict(observation(ep.steps, meta.task))["value"]
        written.append(plot_episode_values(v, out / f"value_{episode}.png", mc_return=mc_return,
                                           is_intervention=flags, fps=meta.fps, title=title))  # fmt: skip
    sets = st.label_sets()
    if labels is None and value is None:
        if not sets:
            raise LabelError(
                f"{store} has no label sets; run `recap label {store} --value CKPT` or pass --value"
            )
        labels = max(sets, key=lambda n: st.label_set_metadata(n).get("created", ""))
    if labels is not None:
        data = st.read_labels(labels)
        if episode not in data:
            raise LabelError(
                f"label set {labels!r} has no labels for episode {episode}; relabel it with `recap label`"
            )
        lab = data[episode]
        if value is None:
            written.append(plot_episode_values(lab["value"], out / f"value_{episode}.png", mc_return=lab.get("mc_return"),
                                               is_intervention=flags, advantage=lab.get("advantage"),
                                               indicator=lab.get("indicator"), fps=meta.fps, title=title))  # fmt: skip
        by_task: dict[str, list[torch.Tensor]] = defaultdict(list)
        for m in st.episodes():
            if m.episode_id in data:
                by_task[m.task].append(data[m.episode_id]["advantage"])
        thresholds = st.label_set_metadata(labels).get("metadata", {}).get("thresholds", {})
        written.append(plot_advantage_histograms({t: torch.cat(a) for t, a in by_task.items()}, thresholds,
                                                 out / "advantages.png"))  # fmt: skip
    for p in written:
        print(f"wrote {p}")
    return 0
