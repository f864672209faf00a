"""The evaluation backend renders exactly the cameras the evaluated policy reads."""

from __future__ import annotations

import importlib.util

import attrs
import pytest

from recap import config as recap_config
from recap.errors import ConfigError
from recap.plugins import load_registry
from recap.rollout.collect import check_serves, evaluation_backend_config

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("recap_bimanual") is None, reason="needs the simulated robot plugin"
)


@attrs.frozen
class _Reads:
    """Stands in for a policy: only what it reads matters here."""

    input_cameras: tuple[str, ...]


@pytest.mark.parametrize(
    "cameras", [(), ("cam_high",), ("cam_high", "cam_left_wrist")], ids=["state-only", "one", "two"]
)
def test_evaluation_backend_renders_the_cameras_the_policy_reads(cameras):
    reg = load_registry(entrypoints=True)  # the shipped sim plugin, installed
    cfg = recap_config.resolve_preset("smoke", reg)
    assert cfg.eval_backend is None and cfg.backend.cameras == ("cam_high",)
    backend = reg.build(evaluation_backend_config(cfg.backend, _Reads(cameras)))
    try:
        assert backend.spec.camera_names == cameras
        check_serves(backend, _Reads(cameras))
    finally:
        backend.close()


def test_a_backend_without_a_camera_the_policy_reads_is_refused():
    reg = load_registry(entrypoints=True)
    cfg = recap_config.resolve_preset("smoke", reg)
    backend = reg.build(attrs.evolve(cfg.backend, cameras=()))
    try:
        with pytest.raises(ConfigError, match=r"reads cameras \['cam_high'\]"):
            check_serves(backend, _Reads(("cam_high",)))
    finally:
        backend.close()


def test_backends_whose_cameras_are_not_names_are_left_as_configured():
    @attrs.frozen
    class Hardware:
        cameras: tuple[object, ...] = (object(),)

    config = Hardware()
    assert evaluation_backend_config(config, _Reads(("cam_high",))) is config
