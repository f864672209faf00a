"""Recording episodes on the real robot: run, let the operator label, store (or discard), mark faults.

``record_episode`` is ``recap.rollout.run_episode`` plus what only a real robot needs:
- the operator's end-of-episode key decides the label: success, failure, or discard (nothing is stored);
  an episode that hit the time limit unlabelled waits up to ``label_timeout_s`` for that key;
- an episode ended by a persistent fault (or an e-stop) is stored up to the fault, unlabelled, and its label
  history records the fault (``store.success_history(episode_id)``), so it is never mistaken for a clean run.
"""

from __future__ import annotations

import time
from typing import Any

import attrs

from recap.data import EpisodeMeta, EpisodeStore
from recap.protocols import Teleoperator
from recap.rollout import EpisodeRecord, run_episode
from recap_bimanual.hardware.robot import AlohaHardware

FAULT_LABELLER = "aloha-hw driver"


@attrs.frozen
class RecordedEpisode:
    """What happened: the run, its stored metadata (None when discarded), the operator's outcome key."""

    record: EpisodeRecord
    meta: EpisodeMeta | None
    outcome: str | None
    loop_stats: dict[str, Any]


def wait_for_outcome(robot: AlohaHardware, timeout_s: float) -> str | None:
    """Poll the operator console until an outcome key (success / failure / discard) or the timeout."""
    deadline = time.monotonic() + timeout_s
    while robot.console.outcome is None and time.monotonic() < deadline:
        robot.console.update()
        time.sleep(0.01)
    return robot.console.outcome


def record_episode(
    robot: AlohaHardware,
    actor: Any,
    store: EpisodeStore,
    *,
    task: str,
    teleoperator: Teleoperator | None = None,
    chunk_execute: int | None = None,
    time_limit: int | None = None,
    policy_version: str = "",
    label_timeout_s: float = 0.0,
    seed: int | None = None,
) -> RecordedEpisode:
    """Run one episode on the robot and store it as the operator labels it."""
    record = run_episode(
        robot,
        actor,
        task=task,
        seed=seed,
        chunk_execute=chunk_execute,
        time_limit=time_limit,
        teleoperator=teleoperator,
    )
    stats = robot.loop_stats()
    outcome = robot.console.outcome
    if outcome is None and not record.fault and label_timeout_s > 0:
        outcome = wait_for_outcome(robot, label_timeout_s)
    if outcome == "discard":
        return RecordedEpisode(record, None, outcome, stats)
    success = {"success": True, "failure": False}.get(outcome or "", record.success)
    if record.fault:
        success = None  # a fault says nothing about the policy; the operator may still label it later
    subtasks = record.subtasks if any(record.subtasks) else None
    meta = store.add(
        record.steps,
        task=task,
        source=record.source,
        success=success,
        policy_version=policy_version,
        robot_id=robot.config.robot_id,
        subtasks=subtasks,
    )
    if record.fault:
        meta = store.set_success(
            meta.episode_id,
            None,
            by=FAULT_LABELLER,
            note=f"episode ended by a fault after {record.length} steps: {record.fault}",
        )
    return RecordedEpisode(record, meta, outcome, stats)
