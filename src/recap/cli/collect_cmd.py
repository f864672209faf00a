"""``recap collect``: record episodes of a demonstrator, a policy checkpoint, or a policy with an intervening
operator into an EpisodeStore.

    recap collect --store runs/demos --episodes 50 --demonstrator.bad-grasp-prob 0.3
    recap collect --store runs/iter1 --policy runs/pi0/policy teleoperator:scripted-expert --episodes 100

Settings are taken as ``recap loop`` takes them: ``kind:name`` switches pick a registered backend,
demonstrator or teleoperator, ``--kind.setting value`` sets one of its settings, in any order; ``--config
FILE`` starts from a saved settings file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from recap.cli.overrides import parse_command
from recap.config import BackendConfig, DemonstratorConfig, PluginConfig, TeleoperatorConfig
from recap.data import EpisodeStore
from recap.errors import ConfigError
from recap.plugins import get_registry
from recap.rollout.chunking import Execution
from recap.rollout.seeds import check_training_seeds

#: The registered implementations a rollout command starts from, when they are installed.
DEFAULT_BACKEND, DEFAULT_DEMONSTRATOR = "aloha-sim", "scripted"


def _positive(instance: object, attribute: attrs.Attribute, value: int) -> None:
    if value < 1:
        raise ValueError(f"--{attribute.name} must be >= 1, got {value}")


@attrs.frozen(kw_only=True)
class RolloutSettings:
    """What acts on which robot, for how many episodes.

    Attributes:
        backend: the robot, by registered name (``backend:aloha-sim --backend.cameras cam_high``).
        policy: a policy checkpoint directory (sampled with its saved deployment settings) or a policy server
            URL ``ws://HOST:PORT`` (``recap serve``; the served checkpoint's settings); replaces the demonstrator.
        demonstrator: the scripted/teleoperated actor used when no policy is given.
        teleoperator: an operator that may take over (``teleoperator:scripted-expert``); its steps are
            recorded as interventions.
        episodes: number of episodes.
        task: the task prompt, given to the backend too when it has a ``task`` setting.
        chunk_execute: actions executed per sampled chunk before re-inferring (default: the whole chunk).
        time_limit: maximum control ticks per episode (default: the backend's).
        execution: how a policy's chunks run: "sync" (hold while the next chunk is computed), "naive" (async,
            switch at the boundary) or "rtc" (async with real-time chunking); see docs/deploy.md.
        delay_ticks: inference delay injected in control ticks (simulation); -1 measures it on the wall clock
            (hardware, remote policies), inference then runs beside the control loop.
        progress: show episodes done, successes and time left.
    """

    backend: BackendConfig
    policy: str | None = None
    demonstrator: DemonstratorConfig | None = None
    teleoperator: TeleoperatorConfig | None = None
    episodes: int = attrs.field(default=50, validator=_positive)
    task: str = "transfer_cube"
    chunk_execute: int | None = None
    time_limit: int | None = None
    execution: Literal["sync", "naive", "rtc"] = "sync"
    delay_ticks: int = attrs.field(default=0, validator=attrs.validators.ge(-1))
    progress: bool = True

    def chunk_execution(self) -> Execution:
        return Execution(self.execution, delay_ticks=None if self.delay_ticks == -1 else self.delay_ticks)


@attrs.frozen(kw_only=True)
class CollectSettings(RolloutSettings):
    """Record episodes into a store.

    Attributes:
        store: the episode store directory (created if new).
        seed: seed of the first episode (episodes use seeds ``seed``, ``seed + 1``, ...); recorded episodes
            stay below the evaluation seeds, so ``recap evaluate`` never scores an episode trained on.
        policy_version: recorded with each episode (default: the checkpoint directory's name).
        robot_id: recorded with each episode.
        image_codec: camera frames of a new store: none (raw), zlib, av1, h264 or lossless (docs/data.md);
            an existing store keeps its own.
    """

    store: Path
    seed: int = 0
    policy_version: str | None = None
    robot_id: str = ""
    image_codec: str = "none"


def registered_default(kind: str, name: str) -> PluginConfig | None:
    """The default config of ``name`` when it is registered, else of the first registered ``kind``."""
    registry = get_registry()
    names = [n for n in registry.names(kind) if registry.get(kind, n).config is not None]
    if not names:
        return None
    return registry.get(kind, name if name in names else names[0]).config()


def rollout_defaults() -> dict[str, Any]:
    backend = registered_default("backend", DEFAULT_BACKEND)
    if backend is None:
        raise ConfigError("no robot backend is registered; install the recap plugins (see README)")
    return {"backend": backend, "demonstrator": registered_default("demonstrator", DEFAULT_DEMONSTRATOR)}


def build_rollout_parts(settings: RolloutSettings, *, evaluation: bool) -> tuple[Any, Any, Any, Any, str]:
    """(backend, actor, deployment, teleoperator, policy_version) from the settings.

    For evaluation with a policy, the backend renders the cameras the policy reads (see
    ``recap.rollout.collect.evaluation_backend_config``).
    """
    from recap.rollout.collect import backend_for_task, check_serves, evaluation_backend_config

    registry = get_registry()
    config = backend_for_task(settings.backend, settings.task)
    deployment, version, policy = None, "", None
    if settings.policy is not None:
        from recap.deploy import open_policy

        policy, deployment, version = open_policy(settings.policy, registry)
        if evaluation:
            config = evaluation_backend_config(config, policy)
    elif settings.demonstrator is None:
        raise ConfigError("nothing to run: give --policy CHECKPOINT_DIR or demonstrator:NAME")
    robot = registry.build(config)
    if policy is not None:
        check_serves(robot, policy)
        actor = policy
    else:
        actor = registry.build(settings.demonstrator, robot)
        version = f"demonstrator:{registry.entry_for(settings.demonstrator).name}"
    teleop = None if settings.teleoperator is None else registry.build(settings.teleoperator, robot)
    return robot, actor, deployment, teleop, version


def open_or_create_store(path: Path, spec: Any, image_codec: str | None = None) -> EpisodeStore:
    if path.exists() and any(path.iterdir()):
        store = EpisodeStore.open(path)
        if store.spec != spec:
            raise ConfigError(
                f"the store at {path} was recorded with {store.spec}, but this robot produces {spec}; use a new "
                "store directory or configure the backend like the store (cameras, image size, privileged state)"
            )
        return store
    return EpisodeStore.create(path, spec, image_codec=image_codec)


def collect(args: Sequence[str]) -> int:
    """Record episodes into the store at ``--store`` (created if new)."""
    from recap.rollout import collect as collect_episodes

    settings = parse_command(CollectSettings, rollout_defaults(), args, "recap collect", __doc__)
    check_training_seeds(settings.seed, settings.episodes)
    robot, actor, deployment, teleop, version = build_rollout_parts(settings, evaluation=False)
    with robot:
        codec = None if settings.image_codec == "none" else settings.image_codec
        store = open_or_create_store(settings.store, robot.spec, codec)
        metas, report = collect_episodes(
            robot,
            actor,
            store,
            task=settings.task,
            seeds=range(settings.seed, settings.seed + settings.episodes),
            chunk_execute=settings.chunk_execute,
            time_limit=settings.time_limit,
            teleoperator=teleop,
            deployment=deployment,
            policy_version=version if settings.policy_version is None else settings.policy_version,
            robot_id=settings.robot_id,
            progress=settings.progress,
            execution=settings.chunk_execution(),
        )
    print(f"recorded {len(metas)} episodes into {settings.store}")
    for line in report.lines():
        print(line)
    return 0


collect.raw_args = True
