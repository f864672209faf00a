"""The loop's ``task`` is the task its robot runs: a preset whose backend names another task still collects,
records and evaluates the loop's task (the simulator has one scene per task, with its own object state)."""

from __future__ import annotations

import importlib.util

import attrs
import pytest

from recap import config as recap_config
from recap.loop.experience import backend_spec
from recap.plugins import load_registry

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("recap_bimanual") is None, reason="needs the simulated robot plugin"
)


@pytest.mark.parametrize(("task", "object_state"), [("transfer_cube", 7), ("insertion", 14)])
def test_the_loop_task_sets_the_backend_task(task, object_state):
    reg = load_registry(entrypoints=True)
    cfg = recap_config.resolve_preset("smoke", reg)
    assert cfg.backend.task == "transfer_cube"
    cfg = attrs.evolve(cfg, task=task, backend=attrs.evolve(cfg.backend, cameras=()))
    spec = backend_spec(cfg, reg)  # the store's spec: one object pose per object of the task's scene
    assert spec.env_state_dim == object_state
