"""Evaluation episodes run on ``eval_backend`` when the loop config names one, else on ``backend``."""

from __future__ import annotations

import importlib.util

import attrs
import pytest

from recap import config as recap_config
from recap.loop import experience
from recap.plugins import load_registry

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("recap_bimanual") is None, reason="needs the simulated robot plugin"
)


def test_evaluation_uses_the_eval_backend_and_collection_the_main_one():
    reg = load_registry(entrypoints=True)  # the shipped sim plugin, installed
    cfg = recap_config.resolve_preset("smoke", reg)
    assert cfg.eval_backend is not None
    collect, evaluate = experience._backend(cfg, reg), experience._backend(cfg, reg, evaluation=True)
    try:
        assert collect.spec.camera_names == ("cam_high",)
        assert evaluate.spec.camera_names == ()  # the policy reads no camera: nothing is rendered
        assert evaluate.spec.state_dim == collect.spec.state_dim
    finally:
        collect.close()
        evaluate.close()
    same = experience._backend(attrs.evolve(cfg, eval_backend=None), reg, evaluation=True)
    try:
        assert same.spec.camera_names == ("cam_high",)
    finally:
        same.close()
