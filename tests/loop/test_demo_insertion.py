"""The ``demo-insertion`` preset runs the whole loop on the insertion scene: shrunk to smoke size, its store holds
insertion episodes (peg + socket poses), the expert's corrections among them, and no takeover of the expert
tipped the socket over."""

from __future__ import annotations

import importlib.util

import attrs
import numpy as np
import pytest
import torch

from recap import config as recap_config
from recap.data import keys
from recap.data.store import EpisodeStore
from recap.loop.recap_loop import run_loop
from recap.plugins import load_registry

NEEDED = ("recap_bimanual", "recap_distributional_value", "recap_advantage_conditioning")
pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in NEEDED),
    reason="needs the sim, value and extractor plugins",
)


def _tiny(cfg):
    """The preset at smoke size and below: a few short episodes, tiny networks, a few training steps."""
    backend = attrs.evolve(cfg.backend, cameras=())
    steps = {
        "value_pretrain": 10,
        "value_finetune": 10,
        "policy_pretrain": 20,
        "policy_sft": 10,
        "policy_finetune": 10,
    }
    changes = {
        name: attrs.evolve(
            getattr(cfg, name),
            batch_size=16,
            trainer=attrs.evolve(
                getattr(cfg, name).trainer, steps=n, warmup_steps=0, checkpoint_every=n, log_every=n
            ),
        )
        for name, n in steps.items()
    }
    return attrs.evolve(
        cfg,
        backend=backend,
        eval_backend=backend,
        collect=attrs.evolve(
            cfg.collect, demos=3, episodes_per_iteration=2, intervention_share=1.0, eval_episodes=1, workers=1
        ),
        policy=attrs.evolve(cfg.policy, hidden=32, depth=1),
        value=attrs.evolve(cfg.value, network=attrs.evolve(cfg.value.network, hidden=32, depth=1)),
        **changes,
    )


def _socket_tilt_deg(env_state: torch.Tensor) -> np.ndarray:
    """Per step: the socket's tilt from upright, from its quaternion (w x y z) in the 14-D object state."""
    w, x, y, _ = env_state[:, 10:14].double().numpy().T
    return np.degrees(np.arccos(np.clip(1 - 2 * (x**2 + y**2), -1.0, 1.0)))


def test_demo_insertion_runs_the_loop_on_insertion(tmp_path):
    reg = load_registry(entrypoints=True)
    preset = recap_config.resolve_preset("demo-insertion", reg)
    assert preset.task == preset.backend.task == preset.eval_backend.task == "insertion"
    assert preset.expert is not None and preset.collect.time_limit == preset.backend.time_limit == 600
    labeler = preset.finetune_labeler  # the labels measured best on insertion: every episode, 25%
    assert not labeler.successful_only and labeler.positive_fraction == 0.25
    cfg = attrs.evolve(_tiny(preset), out=tmp_path / "run")
    run_loop(cfg, reg, log=lambda line: None)

    store = EpisodeStore.open(tmp_path / "run" / "store")
    metas = store.episodes()
    assert {m.task for m in metas} == {"insertion"}
    assert store.spec.env_state_dim == 14  # peg and socket poses: the backend ran the insertion scene
    corrections = [m for m in metas if m.source == "correction"]
    assert corrections, "the expert watched every collection episode and never took over"
    for meta in corrections:
        steps = store.load(meta.episode_id).steps
        flags = steps.get(keys.IS_INTERVENTION)
        tilt = _socket_tilt_deg(steps.get(keys.ENV_STATE))
        first = int(torch.nonzero(flags)[0])
        # from the first takeover on, the socket stays upright (it may ride in the left gripper, tilted a bit)
        assert tilt[first:].max() < 30.0, (meta.seed, tilt[first:].max())
