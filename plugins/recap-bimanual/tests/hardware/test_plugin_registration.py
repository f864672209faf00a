"""aloha-hw and leader-arms are registered, configurable from TOML, and build working objects."""

from __future__ import annotations

import pytest
import torch
from recap_bimanual.emulator import EMULATOR_BUS

from recap import config as rc
from recap.config import BackendConfig, TeleoperatorConfig
from recap.errors import ConfigError
from recap.plugins import load_registry
from recap.protocols import RobotBackend, Teleoperator


@pytest.fixture(scope="module")
def registry():
    return load_registry(extra_plugins=["recap_bimanual.plugin"], entrypoints=False)


def test_backend_from_toml_drives_the_emulated_robot(registry, followers):
    left, right = followers
    text = f"""
name = "aloha-hw"
robot_id = "bench-1"
left_port = "{left.port}"
right_port = "{right.port}"
image_height = 24
image_width = 32
operator_inputs = []
reply_timeout_ms = 250.0
retries = 4
cameras = [{{name = "cam_high", source = "synthetic"}}]
"""
    cfg = rc.loads(text, BackendConfig, "toml", registry)
    assert rc.loads(rc.dumps(cfg, "toml", registry), BackendConfig, "toml", registry) == cfg
    with registry.get("backend", "aloha-hw").build(cfg) as robot:
        assert isinstance(robot, RobotBackend) and robot.spec.camera_names == ("cam_high",)
        robot.reset("pick")
        assert robot.step(torch.zeros(14)).obs["observation.state"].shape == (14,)


def test_teleoperator_factory_shares_the_robot_console(registry, followers, leaders):
    left, right = followers
    from recap_bimanual.hardware.robot import AlohaHardware, AlohaHardwareConfig

    robot = AlohaHardware(
        AlohaHardwareConfig(left_port=left.port, right_port=right.port, cameras=(), operator_inputs=())
    )
    cfg = rc.from_dict(
        TeleoperatorConfig,
        {"name": "leader-arms", "left_port": leaders[0].port, "right_port": leaders[1].port, **EMULATOR_BUS},
        registry=registry,
    )
    teleop = registry.get("teleoperator", "leader-arms").build(cfg, robot)
    assert isinstance(teleop, Teleoperator) and teleop.console is robot.console
    teleop.reset("pick")
    assert teleop.poll(None) is None
    robot.console.takeover = True
    assert teleop.poll(None).shape == (14,)
    teleop.close()
    robot.close()
    with pytest.raises(ConfigError, match="aloha-hw"):
        registry.get("teleoperator", "leader-arms").build(cfg, object())


def test_bad_config_values_are_refused_with_the_fix():
    from recap_bimanual.hardware.robot import AlohaHardwareConfig

    with pytest.raises(ConfigError, match="14 values"):
        AlohaHardwareConfig(start_pose=(0.0,) * 7)
    with pytest.raises(ConfigError, match="source"):
        from recap_bimanual.hardware.robot import AlohaHardware, CameraConfig

        AlohaHardware(AlohaHardwareConfig(cameras=(CameraConfig("cam_high", "webcam"),), operator_inputs=()))
