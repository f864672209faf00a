"""The Recap loop's configuration (Algorithm 1 of the paper; docs/method.md).

Every "which plugin" field names a registered implementation by its config class (tagged ``name`` on disk),
so any extractor, value estimator, policy or backend is chosen by registered name.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from recap.config import (
    BackendConfig,
    DemonstratorConfig,
    ExtractorConfig,
    LabelerConfig,
    PolicyConfig,
    TeleoperatorConfig,
    ValueEstimatorConfig,
)
from recap.rollout.seeds import check_training_plan, evaluation_seeds
from recap.train.trainer import TrainerConfig
from recap.validators import fraction, positive


@attrs.frozen
class CollectConfig:
    """How episodes are gathered on the robot.

    Attributes:
        demos: scripted/teleoperated demonstrations of the target task for pre-training and SFT.
        episodes_per_iteration: autonomous episodes per improvement iteration (paper: 300-960).
        intervention_share: share of those episodes run with the intervening expert watching.
        eval_episodes: evaluation episodes per stage, on fixed seeds (the same seeds for every stage).
        chunk_execute: actions executed from each predicted chunk before re-inferring.
        time_limit: steps before an episode is cut (and counted a failure).
        workers: rollout processes (episodes are independent; results do not depend on this).
        serve: collect through a policy server: each iteration's checkpoint is served on a loopback port
            (``recap.deploy``) and the workers drive the robot through it, the path a robot would use.
    """

    demos: int = attrs.field(default=60, validator=positive)
    episodes_per_iteration: int = attrs.field(default=60, validator=positive)
    intervention_share: float = attrs.field(default=0.25, validator=fraction)
    eval_episodes: int = attrs.field(default=50, validator=positive)
    chunk_execute: int = attrs.field(default=10, validator=positive)
    time_limit: int = attrs.field(default=400, validator=positive)
    workers: int = attrs.field(default=2, validator=positive)
    serve: bool = False


@attrs.frozen
class StageTraining:
    """Trainer settings and batch size of one training stage."""

    trainer: TrainerConfig = attrs.field(factory=TrainerConfig)
    batch_size: int = attrs.field(default=256, validator=positive)


#: how pi_k is trained in each iteration (``LoopConfig.iteration_policy``)
ITERATION_POLICIES = ("finetune", "retrain", "continue")


@attrs.frozen
class LoopConfig:
    """Pre-train, SFT, then K iterations of collect -> value -> relabel -> policy -> evaluate.

    Attributes:
        out: the run directory (every stage writes its config, metrics, checkpoints and summary there).
        task: the target task prompt given to the backend and the policy.
        iterations: K improvement iterations (the paper: one often helps a lot; two removed a failure mode).
        backend / demonstrator / expert: the robot, the demonstration source and the intervening operator.
        eval_backend: the backend of evaluation episodes, which record nothing (default: ``backend``). Its
            cameras are set to the ones the evaluated policy reads (``Policy.input_cameras``), so a state-only
            policy is evaluated without rendering and a vision policy sees every camera it was trained on.
        policy / value: the models, by registered name.
        pretrain_labeler / finetune_labeler: Monte-Carlo advantages with ~30% positive for pre-training,
            n-step advantages with ~40% positive per iteration (docs/method.md).
        extractor: the policy extractor of the iterations and the pre-training (Recap: advantage conditioning).
        sft_extractor: the demonstration fine-tuning stage (advantage conditioning with I = 1).
        chunk_size: action chunk H the policy predicts (and the sampler cuts).
        seed: the run seed (0..1021): demonstration and collection episode seeds come from its own block of
            seeds and every training stage's initialisation and batches from it; evaluation seeds do not depend
            on it, so runs with different seeds are scored on the same episodes (``recap.rollout.seeds``).
        deterministic: the same config and seed give the same run on one machine (the same episodes, checkpoints
            and evaluation table): torch's deterministic algorithms (slower on a GPU; an op without one warns)
            and rollouts that sample the policy on one torch thread, so an episode does not depend on
            ``collect.workers`` or on how many episodes were left to run when a stage resumed. Off: rollout
            workers share the cores between them.
        policy_init: a policy checkpoint the pre-training stage fine-tunes instead of training ``policy`` from
            scratch (e.g. public pi0.5 weights from ``recap weights import``; its own config then applies).
        iteration_policy: how pi_k is trained on D: ``finetune`` fine-tunes pi_pre with ``policy_finetune``
            (Algorithm 1 as the paper writes it); ``retrain`` trains it the way pi_pre was trained (from
            ``policy_init`` or fresh weights, with ``policy_pretrain``), on D and the iteration's labels;
            ``continue`` fine-tunes pi_(k-1), the policy that collected the iteration's data, from the second
            iteration on (pi_pre in the first).
            Where pi_pre is itself trained on the task's demonstrations only, fine-tuning it under new labels
            can undo what the demonstrations taught (docs/results.md measures both).
    """

    backend: BackendConfig
    demonstrator: DemonstratorConfig
    policy: PolicyConfig
    value: ValueEstimatorConfig
    pretrain_labeler: LabelerConfig
    finetune_labeler: LabelerConfig
    extractor: ExtractorConfig
    sft_extractor: ExtractorConfig | None = None
    expert: TeleoperatorConfig | None = None
    eval_backend: BackendConfig | None = None
    out: Path = Path("runs/recap")
    task: str = "transfer_cube"
    iterations: int = attrs.field(default=1, validator=attrs.validators.ge(0))
    collect: CollectConfig = attrs.field(factory=CollectConfig)
    value_pretrain: StageTraining = attrs.field(factory=StageTraining)
    value_finetune: StageTraining = attrs.field(factory=StageTraining)
    policy_pretrain: StageTraining = attrs.field(factory=StageTraining)
    policy_sft: StageTraining = attrs.field(factory=StageTraining)
    policy_finetune: StageTraining = attrs.field(factory=StageTraining)
    chunk_size: int = attrs.field(default=20, validator=positive)
    seed: int = 0
    policy_init: Path | None = None
    iteration_policy: str = attrs.field(
        default="finetune", validator=attrs.validators.in_(ITERATION_POLICIES)
    )
    deterministic: bool = True

    def __attrs_post_init__(self) -> None:
        check_training_plan(
            self.seed, self.iterations, max(self.collect.demos, self.collect.episodes_per_iteration)
        )
        evaluation_seeds(self.collect.eval_episodes)
