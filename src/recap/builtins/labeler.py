"""The default AdvantageLabeler ("recap"): values + success labels -> advantages and indicators.

Per task: rewards (Eq. 5), returns normalised by the task's maximum length, advantages (n-step with
Monte-Carlo fallback for fine-tuning, or Monte-Carlo for pre-training), a threshold eps_l that makes the
requested share of steps positive (optionally only among the steps of successful episodes), then intervention
steps forced positive.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Literal

import attrs
import torch

from recap import rl
from recap.config import LabelerConfig
from recap.errors import LabelError, SchemaError
from recap.hookspecs import RegisterLabeler
from recap.plugins import hookimpl
from recap.protocols import EpisodeToLabel, LabelResult
from recap.validators import fraction


@attrs.frozen
class RecapLabelerConfig(LabelerConfig):
    """Settings of the default labeler.

    Attributes:
        mode: "nstep" (fine-tuning: A = sum_{t'<t+N} r + V(o_{t+N}) - V(o_t)) or "monte_carlo"
            (pre-training: A = R_t - V(o_t)).
        lookahead: N for the n-step advantage (paper: 50 steps = 1 s at 50 Hz).
        positive_fraction: share of each task's steps labelled I = 1 before interventions are forced
            (paper: ~30% in pre-training, ~40% in fine-tuning).
        per_task_fraction: overrides of ``positive_fraction`` by task prompt.
        c_fail: failure penalty C_fail in steps; None = the task's maximum length (failures normalise to -1).
        successful_only: only steps of successful episodes can be labelled I = 1 (besides forced
            interventions), and ``positive_fraction`` is their share of those steps. An n-step window sees only
            N steps ahead, so inside a failed episode a step that raises V a little (lifting a cube held at a
            roll that drops it later) ranks like steady progress in a good one; the policy then reads those
            steps as I = 1. Monte-Carlo advantages need no filter (a failure's return is below every value).
        force_interventions: steps under operator correction get I = 1.
        force_failed_interventions: with ``force_interventions``, also the correction steps of episodes that
            failed in the end (the paper assumes every correction is good; a scripted or tired operator's
            correction that runs out of time is not). False leaves them to their advantage like any step.
        seed: seeds the tie-breaking among equal advantages at the threshold.
    """

    mode: Literal["nstep", "monte_carlo"] = "nstep"
    lookahead: int = attrs.field(default=50, validator=attrs.validators.ge(1))
    positive_fraction: float = attrs.field(default=0.3, validator=fraction)
    per_task_fraction: dict[str, float] = attrs.field(factory=dict)
    c_fail: float | None = None
    successful_only: bool = False
    force_interventions: bool = True
    force_failed_interventions: bool = True
    seed: int = 0


@attrs.define
class RecapLabeler:
    """Implements ``recap.protocols.AdvantageLabeler``."""

    config: RecapLabelerConfig = attrs.field(factory=RecapLabelerConfig)

    def label(self, episodes: Sequence[EpisodeToLabel], max_length: Mapping[str, int]) -> LabelResult:
        if not episodes:
            raise LabelError("no episodes to label; the store (or the chosen filter) is empty")
        by_task: dict[str, list[EpisodeToLabel]] = defaultdict(list)
        for ep in episodes:
            _check_episode(ep)
            by_task[ep.task].append(ep)
        labels: dict[str, dict[str, torch.Tensor]] = {}
        thresholds: dict[str, float] = {}
        fractions: dict[str, float] = {}
        g = torch.Generator().manual_seed(self.config.seed)
        for task, eps in sorted(by_task.items()):
            if task not in max_length:
                raise LabelError(f"no maximum episode length given for task {task!r}; pass it in max_length")
            task_labels, thresholds[task], fractions[task] = self._label_task(eps, max_length[task], g)
            labels.update(task_labels)
        return LabelResult(episodes=labels, thresholds=thresholds, positive_fraction=fractions)

    def _label_task(
        self, eps: list[EpisodeToLabel], max_len: int, g: torch.Generator
    ) -> tuple[dict[str, dict[str, torch.Tensor]], float, float]:
        cfg = self.config
        lengths = torch.tensor([ep.values.shape[0] for ep in eps])
        if int(lengths.max()) > max_len:
            raise LabelError(
                f"an episode of task {eps[0].task!r} is longer ({int(lengths.max())}) than its max_length {max_len}"
            )
        success = torch.tensor([bool(ep.success) for ep in eps])
        values = _pad([ep.values.float() for ep in eps])
        c_fail = float(max_len) if cfg.c_fail is None else cfg.c_fail
        rewards = rl.episode_rewards_batched(lengths, success, c_fail) / max_len
        returns = rl.normalized_mc_returns_batched(lengths, success, max_len, c_fail)
        if cfg.mode == "nstep":
            adv = rl.nstep_advantages(rewards, values, lengths, cfg.lookahead, success, max_len)
        else:
            adv = rl.mc_advantages(returns, values, lengths)
        valid = rl.valid_mask(lengths, values.shape[1])
        mask = valid
        if cfg.successful_only:
            if not success.any():
                raise LabelError(
                    f"successful_only: no episode of task {eps[0].task!r} succeeded, so no step can be labelled "
                    "I = 1; record (or label) some successes first, or label with successful_only=False"
                )
            mask = valid & success[:, None]
        fraction = cfg.per_task_fraction.get(eps[0].task, cfg.positive_fraction)
        flat_ind, eps_l = rl.indicators_for_fraction(adv[mask], fraction, g)
        indicator = torch.zeros_like(mask)
        indicator[mask] = flat_ind
        out: dict[str, dict[str, torch.Tensor]] = {}
        for i, ep in enumerate(eps):
            n = int(lengths[i])
            ind = indicator[i, :n]
            if cfg.force_interventions and (ep.success or cfg.force_failed_interventions):
                ind = rl.force_interventions(ind, ep.is_intervention.bool())
            out[ep.episode_id] = {"mc_return": returns[i, :n], "advantage": adv[i, :n], "indicator": ind}
        return out, eps_l, float(indicator[valid].float().mean())  # share of all the task's steps


def _check_episode(ep: EpisodeToLabel) -> None:
    if ep.success is None:
        raise LabelError(
            f"episode {ep.episode_id} has no success label; label it with `recap data label-success STORE "
            f"{ep.episode_id} --success` (or --failure), or skip unlabelled episodes with --skip-unlabelled"
        )
    if ep.values.ndim != 1 or ep.values.numel() == 0:
        raise SchemaError(
            f"episode {ep.episode_id}: values must be [T] with T >= 1, got {tuple(ep.values.shape)}"
        )
    if ep.is_intervention.shape != ep.values.shape:
        raise SchemaError(
            f"episode {ep.episode_id}: is_intervention has shape {tuple(ep.is_intervention.shape)} but values "
            f"has {tuple(ep.values.shape)}; both need one entry per step"
        )
    if not torch.isfinite(ep.values).all():
        raise SchemaError(f"episode {ep.episode_id}: values contain NaN/inf; check the value model")


def _pad(rows: list[torch.Tensor]) -> torch.Tensor:
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)


@hookimpl
def register_labelers(register: RegisterLabeler) -> None:
    register("recap", RecapLabeler, config=RecapLabelerConfig)
