"""``recap evaluate``: run a policy checkpoint (or a demonstrator) on fixed seeds and report success rate,
throughput with a 95% confidence interval and mean time to success; writes the report as JSON.

    recap evaluate --policy runs/pi1/ckpt --episodes 100 --backend-set privileged_state=true
"""

from __future__ import annotations

import json
from pathlib import Path

from recap.cli.collect_cmd import build_rollout_parts
from recap.deploy import is_server_url
from recap.errors import ConfigError


def evaluate(
    policy: str | None = None,
    episodes: int = 50,
    task: str = "transfer_cube",
    seed: int = 100_000,
    backend: str = "aloha-sim",
    backend_config: Path | None = None,
    backend_set: tuple[str, ...] = (),
    demonstrator: str | None = None,
    demonstrator_set: tuple[str, ...] = (),
    teleoperator: str | None = None,
    teleoperator_set: tuple[str, ...] = (),
    chunk_execute: int | None = None,
    time_limit: int | None = None,
    output: Path | None = None,
    progress: bool = True,
) -> int:
    """Evaluate on seeds SEED..SEED+EPISODES-1 (fixed, apart from the seeds demonstrations are collected on).

    Args:
        policy: policy checkpoint directory (sampled with its saved deployment settings), or a policy server
            URL ws://HOST:PORT (`recap serve`; sampled with the served checkpoint's settings).
        episodes: number of evaluation episodes.
        task: task name passed to the backend.
        seed: first evaluation seed.
        backend: registered backend name.
        backend_config: TOML/JSON file with the backend config.
        backend_set: backend overrides key=value (e.g. privileged_state=true).
        demonstrator: evaluate a registered demonstrator instead of a policy.
        demonstrator_set: demonstrator overrides key=value.
        teleoperator: evaluate with an intervening operator (its interventions are counted).
        teleoperator_set: teleoperator overrides key=value.
        chunk_execute: actions executed per sampled chunk before re-inferring (default the whole chunk).
        time_limit: maximum control ticks per episode (default: the backend's).
        output: JSON report path (default: <policy>/eval_<task>.json, or eval_<task>.json here for a
            demonstrator or a policy server).
        progress: show a progress bar.
    """
    from recap.rollout import evaluate as evaluate_episodes

    if episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {episodes}")
    if policy is None and demonstrator is None:
        raise ConfigError("nothing to evaluate: give --policy CHECKPOINT_DIR or --demonstrator NAME")
    robot, actor, deployment, teleop, version = build_rollout_parts(
        backend=backend,
        backend_config=backend_config,
        backend_set=backend_set,
        task=task,
        demonstrator=demonstrator,
        demonstrator_config=None,
        demonstrator_set=demonstrator_set,
        policy=policy,
        teleoperator=teleoperator,
        teleoperator_config=None,
        teleoperator_set=teleoperator_set,
    )
    with robot:
        report = evaluate_episodes(
            robot,
            actor,
            task=task,
            seeds=range(seed, seed + episodes),
            chunk_execute=chunk_execute,
            time_limit=time_limit,
            teleoperator=teleop,
            deployment=deployment,
            progress=progress,
        )
    for line in report.lines():
        print(line)
    if output is None:
        local = policy is not None and not is_server_url(policy)
        output = (Path(policy) if local else Path(".")) / f"eval_{task}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "policy": str(policy) if policy else None,
        "version": version,
        "seeds": [seed, seed + episodes - 1],
    }
    data.update(report.to_dict())
    output.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {output}")
    return 0
