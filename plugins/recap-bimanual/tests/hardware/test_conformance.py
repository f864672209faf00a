"""recap's backend and teleoperator conformance suites, run on aloha-hw and leader-arms over emulated arms."""

from __future__ import annotations

import pytest
import torch
from recap_bimanual.emulator import EMULATOR_BUS
from recap_bimanual.hardware.teleop import LeaderArmsConfig, LeaderArmsTeleoperator

from recap.data import keys
from recap.testing.backend_suite import BackendConformance, TeleoperatorConformance, hold_action


class TestAlohaHardwareConformance(BackendConformance):
    task = "pick"

    @pytest.fixture
    def make_backend(self, followers, make_robot):
        return lambda: make_robot(*followers)

    def test_seeded_reset_is_reproducible(self, backend):
        """A real robot cannot replay a seed: its cameras see the world live and nothing resets the scene.
        What must hold: a reset does not move the arms (goals are set to where they are before torque on)."""
        first = backend.reset(self.task, self.seed).clone()
        backend.step(hold_action(first, backend.spec))
        second = backend.reset(self.task, self.seed)
        assert torch.allclose(first.get(keys.STATE), second.get(keys.STATE), atol=0.01)


class TestLeaderArmsConformance(TeleoperatorConformance):
    task = "pick"

    @pytest.fixture
    def make_backend(self, followers, make_robot):
        return lambda: make_robot(*followers)

    @pytest.fixture
    def make_teleoperator(self, leaders):
        config = LeaderArmsConfig(left_port=leaders[0].port, right_port=leaders[1].port, **EMULATOR_BUS)

        def make(backend):
            backend.console.takeover = True  # the operator holds the pedal: poll returns the leaders' pose
            return LeaderArmsTeleoperator.for_backend(config, backend)

        return make
