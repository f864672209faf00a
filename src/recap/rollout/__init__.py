"""Rollouts on any RobotBackend (simulated or real): run, record into an EpisodeStore, evaluate.

Generic over the protocols: a Policy (action chunking with its deployment settings) or a scripted
demonstrator acts, an optional Teleoperator may take over (its steps are flagged ``is_intervention``).
"""

from recap.rollout.actors import Actor, DemonstratorActor, PolicyActor, as_actor
from recap.rollout.chunking import ChunkScheduler, Execution, ExecutionLog, delay_in_ticks
from recap.rollout.collect import EpisodeSummary, RolloutReport, collect, evaluate
from recap.rollout.runner import EpisodeRecord, run_episode

__all__ = [
    "Actor",
    "ChunkScheduler",
    "DemonstratorActor",
    "EpisodeRecord",
    "Execution",
    "ExecutionLog",
    "EpisodeSummary",
    "PolicyActor",
    "RolloutReport",
    "as_actor",
    "collect",
    "delay_in_ticks",
    "evaluate",
    "run_episode",
]
