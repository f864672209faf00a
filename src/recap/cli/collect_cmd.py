"""``recap collect``: record N episodes of a demonstrator, a policy checkpoint, or a policy with an intervening
operator into an EpisodeStore.

    recap collect --store runs/demos --episodes 50 --demonstrator-set bad_grasp_prob=0.3 hesitation_prob=0.2
    recap collect --store runs/iter1 --policy runs/pi0/ckpt --teleoperator scripted-expert --episodes 100

Plugin configs start from their defaults (or ``--*-config FILE.toml``) and take ``key=value`` overrides, values
in TOML syntax (``cameras=["cam_high"]``, ``privileged_state=true``; bare words are strings).
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from recap import config as config_io
from recap.config import PluginConfig
from recap.data import EpisodeStore
from recap.errors import ConfigError, did_you_mean
from recap.plugins import get_registry


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["a=1", "b=x", "c=[1, 2]"]`` -> ``{"a": 1, "b": "x", "c": [1, 2]}`` (TOML values, else strings)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {pair!r}: expected key=value, e.g. time_limit=300")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out[key.strip()] = value
    return out


def build_config(kind: str, name: str, path: Path | None, overrides: Sequence[str]) -> PluginConfig | None:
    """The config of registered ``kind`` ``name``: defaults or ``path``, then ``key=value`` overrides."""
    registry = get_registry()
    entry = registry.get(kind, name)
    if entry.config is None:
        if path is not None or overrides:
            raise ConfigError(f"{kind} {name!r} takes no config, but a config file or overrides were given")
        return None
    if path is not None:
        base_cls = entry.config.__mro__[1]
        loaded = config_io.load(path, base_cls, registry)
        if type(loaded) is not entry.config:
            raise ConfigError(
                f"{path} configures {type(loaded).__name__}, expected {entry.config.__name__} for {name!r}"
            )
        data = config_io.to_dict(loaded, registry)
        data.pop(config_io.TAG, None)
    else:
        data = {}
    extra = parse_overrides(overrides)
    fields = [a.name for a in attrs.fields(entry.config)]
    for key in extra:
        if key not in fields:
            raise ConfigError(
                f"{kind} {name!r} has no setting {key!r}; settings: {fields}.{did_you_mean(key, fields)}"
            )
    return config_io.from_dict(entry.config, {**data, **extra}, registry)


def open_or_create_store(path: Path, spec: Any) -> EpisodeStore:
    if path.exists() and any(path.iterdir()):
        store = EpisodeStore.open(path)
        if store.spec != spec:
            raise ConfigError(
                f"the store at {path} was recorded with {store.spec}, but this robot produces {spec}; use a new "
                "store directory or configure the backend like the store (cameras, image size, privileged state)"
            )
        return store
    return EpisodeStore.create(path, spec)


def build_rollout_parts(
    *,
    backend: str,
    backend_config: Path | None,
    backend_set: Sequence[str],
    task: str,
    demonstrator: str | None,
    demonstrator_config: Path | None,
    demonstrator_set: Sequence[str],
    policy: str | Path | None,
    teleoperator: str | None,
    teleoperator_config: Path | None,
    teleoperator_set: Sequence[str],
) -> tuple[Any, Any, Any, Any, str]:
    """(backend, actor, deployment, teleoperator, policy_version) from command-line choices."""
    registry = get_registry()
    overrides = list(backend_set)
    entry = registry.get("backend", backend)
    if entry.config is not None and "task" in [a.name for a in attrs.fields(entry.config)]:
        overrides = [f"task={task!r}".replace("'", '"'), *overrides]
    robot = entry.build(build_config("backend", backend, backend_config, overrides))
    deployment, version = None, ""
    if policy is not None:
        from recap.deploy import open_policy

        actor, deployment, version = open_policy(policy)
    elif demonstrator is not None:
        config = build_config("demonstrator", demonstrator, demonstrator_config, demonstrator_set)
        actor = registry.get("demonstrator", demonstrator).build(config, robot)
        version = f"demonstrator:{demonstrator}"
    else:
        raise ConfigError("nothing to run: give --policy CHECKPOINT_DIR or --demonstrator NAME")
    teleop = None
    if teleoperator is not None:
        config = build_config("teleoperator", teleoperator, teleoperator_config, teleoperator_set)
        teleop = registry.get("teleoperator", teleoperator).build(config, robot)
    return robot, actor, deployment, teleop, version


def collect(
    store: Path,
    episodes: int = 50,
    task: str = "transfer_cube",
    seed: int = 0,
    backend: str = "aloha-sim",
    backend_config: Path | None = None,
    backend_set: tuple[str, ...] = (),
    demonstrator: str | None = "scripted",
    demonstrator_config: Path | None = None,
    demonstrator_set: tuple[str, ...] = (),
    policy: str | None = None,
    teleoperator: str | None = None,
    teleoperator_config: Path | None = None,
    teleoperator_set: tuple[str, ...] = (),
    chunk_execute: int | None = None,
    time_limit: int | None = None,
    policy_version: str | None = None,
    robot_id: str = "",
    progress: bool = True,
) -> int:
    """Record EPISODES episodes (seeds SEED, SEED+1, ...) into the store at STORE (created if new).

    Args:
        store: episode store directory.
        episodes: number of episodes.
        task: task name passed to the backend.
        seed: seed of the first episode.
        backend: registered backend name.
        backend_config: TOML/JSON file with the backend config (a table with name = "<backend>").
        backend_set: backend overrides key=value.
        demonstrator: registered demonstrator (ignored when --policy is given).
        demonstrator_config: TOML/JSON file with the demonstrator config.
        demonstrator_set: demonstrator overrides key=value (e.g. bad_grasp_prob=0.3).
        policy: policy checkpoint directory (recap.train.checkpoint) or a policy server URL (ws://HOST:PORT,
            see `recap serve`); replaces the demonstrator.
        teleoperator: registered teleoperator that may intervene (e.g. scripted-expert).
        teleoperator_config: TOML/JSON file with the teleoperator config.
        teleoperator_set: teleoperator overrides key=value.
        chunk_execute: actions executed per sampled chunk (policies); default the whole chunk.
        time_limit: maximum control ticks per episode (default: the backend's).
        policy_version: recorded with each episode (default: the checkpoint directory's name).
        robot_id: recorded with each episode.
        progress: show a progress bar.
    """
    from recap.rollout import collect as collect_episodes

    if episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {episodes}")
    robot, actor, deployment, teleop, version = build_rollout_parts(
        backend=backend,
        backend_config=backend_config,
        backend_set=backend_set,
        task=task,
        demonstrator=demonstrator,
        demonstrator_config=demonstrator_config,
        demonstrator_set=demonstrator_set,
        policy=policy,
        teleoperator=teleoperator,
        teleoperator_config=teleoperator_config,
        teleoperator_set=teleoperator_set,
    )
    with robot:
        episode_store = open_or_create_store(store, robot.spec)
        metas, report = collect_episodes(
            robot,
            actor,
            episode_store,
            task=task,
            seeds=range(seed, seed + episodes),
            chunk_execute=chunk_execute,
            time_limit=time_limit,
            teleoperator=teleop,
            deployment=deployment,
            policy_version=version if policy_version is None else policy_version,
            robot_id=robot_id,
            progress=progress,
        )
    print(f"recorded {len(metas)} episodes into {store}")
    for line in report.lines():
        print(line)
    return 0
