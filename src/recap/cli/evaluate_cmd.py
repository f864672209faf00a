"""``recap evaluate``: run a policy checkpoint (or a demonstrator) on the evaluation seeds and report success
rate, throughput with a 95% confidence interval and mean time to success; writes the report as JSON.

    recap evaluate --policy runs/pi1/policy --episodes 100 --backend.privileged-state True
    recap evaluate --policy runs/demo/stages/policy-1/policy --episodes 100 --indicator negative
    recap evaluate --policy runs/demo/stages/policy-1/policy --episodes 100 --guidance 1.5

Evaluation episode ``i`` has the same seed as the loop's evaluation episode ``i``, and no demonstration or
collection ever uses an evaluation seed (``recap.rollout.seeds``), so the numbers compare with the loop's
``eval-*`` stages and never score an episode trained on. Settings are taken as ``recap loop`` takes them
(``kind:name`` switches, ``--kind.setting value``, in any order). With a policy, the backend renders exactly
the cameras the policy reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import attrs

from recap.cli.collect_cmd import RolloutSettings, build_rollout_parts, rollout_defaults
from recap.cli.overrides import parse_command
from recap.deploy import is_server_url
from recap.errors import ConfigError
from recap.protocols import DeploymentSettings

Indicator = Literal["checkpoint", "positive", "none", "negative"]
INDICATOR_VALUES: dict[str, bool | None] = {"positive": True, "none": None, "negative": False}


@attrs.frozen(kw_only=True)
class EvaluateSettings(RolloutSettings):
    """Evaluate on evaluation episodes ``first_episode`` .. ``first_episode + episodes - 1``.

    Attributes:
        first_episode: index of the first evaluation episode (the loop evaluates episodes 0 .. eval_episodes-1).
        indicator: condition the policy on the improvement indicator: "positive" (I = 1), "negative" (I = 0),
            "none" (unconditioned), or "checkpoint" (as the extractor that trained it deploys it).
        guidance: classifier-free guidance beta (default: the checkpoint's).
        output: JSON report path (default: <policy>/eval_<task>.json, or eval_<task>.json here for a
            demonstrator or a policy server).
    """

    first_episode: int = 0
    indicator: Indicator = "checkpoint"
    guidance: float | None = None
    output: Path | None = None


def sampling(
    deployment: DeploymentSettings | None, indicator: Indicator, guidance: float | None
) -> DeploymentSettings | None:
    """The checkpoint's deployment settings with the requested indicator and guidance (a policy only)."""
    if indicator == "checkpoint" and guidance is None:
        return deployment
    if deployment is None:
        raise ConfigError("--indicator and --guidance sample a policy: give --policy CHECKPOINT_DIR")
    if indicator != "checkpoint":
        deployment = attrs.evolve(deployment, indicator=INDICATOR_VALUES[indicator])
    if guidance is not None:
        deployment = attrs.evolve(deployment, guidance=guidance)
    return deployment


def evaluate(args: Sequence[str]) -> int:
    """Evaluate a policy checkpoint (``--policy``) or a demonstrator and write the report."""
    from recap.rollout import evaluate as evaluate_episodes
    from recap.rollout.seeds import evaluation_seeds

    defaults = {**rollout_defaults(), "demonstrator": None}
    settings = parse_command(EvaluateSettings, defaults, args, "recap evaluate", __doc__)
    seeds = evaluation_seeds(settings.episodes, settings.first_episode)
    robot, actor, deployment, teleop, version = build_rollout_parts(settings, evaluation=True)
    deployment = sampling(deployment, settings.indicator, settings.guidance)
    with robot:
        report = evaluate_episodes(
            robot,
            actor,
            task=settings.task,
            seeds=seeds,
            chunk_execute=settings.chunk_execute,
            time_limit=settings.time_limit,
            teleoperator=teleop,
            deployment=deployment,
            progress=settings.progress,
            execution=settings.chunk_execution(),
        )
    for line in report.lines():
        print(line)
    output = settings.output
    if output is None:
        local = settings.policy is not None and not is_server_url(settings.policy)
        output = (Path(settings.policy) if local else Path(".")) / f"eval_{settings.task}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "policy": str(settings.policy) if settings.policy else None,
        "version": version,
        "seeds": [seeds[0], seeds[-1]],
        "deployment": None if deployment is None else attrs.asdict(deployment),
    }
    data.update(report.to_dict())
    output.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {output}")
    return 0


evaluate.raw_args = True
