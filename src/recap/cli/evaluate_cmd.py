"""``recap evaluate``: run a policy checkpoint (or a demonstrator) on fixed seeds and report success rate,
throughput with a 95% confidence interval and mean time to success; writes the report as JSON.

    recap evaluate --policy runs/pi1/policy --episodes 100 --backend.privileged-state True

Settings are taken as ``recap loop`` takes them (``kind:name`` switches, ``--kind.setting value``, in any
order). With a policy, the backend renders exactly the cameras the policy reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import attrs

from recap.cli.collect_cmd import RolloutSettings, build_rollout_parts, rollout_defaults
from recap.cli.overrides import parse_command
from recap.deploy import is_server_url


@attrs.frozen(kw_only=True)
class EvaluateSettings(RolloutSettings):
    """Evaluate on seeds ``seed`` .. ``seed + episodes - 1`` (apart from the seeds demonstrations use).

    Attributes:
        seed: first evaluation seed.
        output: JSON report path (default: <policy>/eval_<task>.json, or eval_<task>.json here for a
            demonstrator or a policy server).
    """

    seed: int = 100_000
    output: Path | None = None


def evaluate(args: Sequence[str]) -> int:
    """Evaluate a policy checkpoint (``--policy``) or a demonstrator and write the report."""
    from recap.rollout import evaluate as evaluate_episodes

    defaults = {**rollout_defaults(), "demonstrator": None}
    settings = parse_command(EvaluateSettings, defaults, args, "recap evaluate", __doc__)
    robot, actor, deployment, teleop, version = build_rollout_parts(settings, evaluation=True)
    seeds = range(settings.seed, settings.seed + settings.episodes)
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
    }
    data.update(report.to_dict())
    output.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {output}")
    return 0


evaluate.raw_args = True
