"""Conformance checks for RobotBackend and Teleoperator plugins (simulated or real).

Subclass in a plugin's tests and override the fixtures::

    class TestMyBackend(BackendConformance):
        task = "transfer_cube"

        @pytest.fixture
        def make_backend(self):
            return lambda: MyBackend(MyConfig(time_limit=20))   # a fresh backend per call

    class TestMyExpert(TeleoperatorConformance):
        task = "transfer_cube"

        @pytest.fixture
        def make_backend(self): ...
        @pytest.fixture
        def make_teleoperator(self):
            return lambda backend: MyExpert(MyExpertConfig(), backend)

The same checks run outside pytest through :func:`check_backend` (e.g. on a robot before a collection run).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from tensordict import TensorDict

from recap.data import keys
from recap.data.spec import RobotSpec
from recap.errors import SchemaError
from recap.protocols import RobotBackend, StepResult, Teleoperator

INFO_TYPES: dict[str, tuple[type, ...]] = {
    "success": (bool, type(None)),
    "stage": (int,),
    "subtask": (str,),
    "fault": (str,),
}


def check_observation(obs: Any, spec: RobotSpec, where: str = "observation") -> None:
    """An unbatched observation holding exactly the keys the spec declares, with the right shapes/dtypes."""
    if not isinstance(obs, TensorDict):
        raise SchemaError(f"{where}: expected a TensorDict, found {type(obs).__name__}")
    if tuple(obs.batch_size) != ():
        raise SchemaError(
            f"{where}: expected an unbatched TensorDict (batch_size []), found {tuple(obs.batch_size)}"
        )
    expected: dict[str, tuple[tuple[int, ...], torch.dtype]] = {
        keys.STATE: ((spec.state_dim,), torch.float32)
    }
    for cam in spec.cameras:
        expected[cam.key] = (cam.shape, torch.uint8)
    if spec.env_state_dim > 0:
        expected[keys.ENV_STATE] = ((spec.env_state_dim,), torch.float32)
    found = set(obs.keys())
    if found != set(expected):
        raise SchemaError(
            f"{where}: keys {sorted(found)} do not match the spec's {sorted(expected)} "
            f"(missing {sorted(set(expected) - found)}, unexpected {sorted(found - set(expected))})"
        )
    for key, (shape, dtype) in expected.items():
        value = obs.get(key)
        if tuple(value.shape) != shape or value.dtype != dtype:
            raise SchemaError(
                f"{where}[{key!r}]: expected {dtype} of shape {shape}, found {value.dtype} {tuple(value.shape)}"
            )
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise SchemaError(f"{where}[{key!r}] holds non-finite values")


def check_step_result(result: Any, spec: RobotSpec) -> None:
    if not isinstance(result, StepResult):
        raise SchemaError(f"step() must return a recap.protocols.StepResult, found {type(result).__name__}")
    check_observation(result.obs, spec, "step().obs")
    if not isinstance(result.done, bool):
        raise SchemaError(f"StepResult.done must be a bool, found {type(result.done).__name__}")
    for key, types in INFO_TYPES.items():
        if key in result.info and not isinstance(result.info[key], types):
            raise SchemaError(
                f"StepResult.info[{key!r}] must be {' or '.join(t.__name__ for t in types)}, "
                f"found {type(result.info[key]).__name__}"
            )


def hold_action(obs: TensorDict, spec: RobotSpec) -> torch.Tensor:
    """An action that keeps the robot where it is (the ALOHA layout: actions and state share units)."""
    if spec.action_dim != spec.state_dim:
        return torch.zeros(spec.action_dim)
    return obs.get(keys.STATE).clone()


def check_backend(backend: RobotBackend, task: str, seed: int = 0, steps: int = 5) -> None:
    """Run the protocol checks on one backend: spec, reset, a few held steps, reproducible resets, bad input."""
    if not isinstance(backend, RobotBackend):
        raise SchemaError(f"{type(backend).__name__} does not implement recap.protocols.RobotBackend")
    spec = backend.spec
    if not isinstance(spec, RobotSpec):
        raise SchemaError(f"backend.spec must be a RobotSpec, found {type(spec).__name__}")
    obs = backend.reset(task, seed)
    check_observation(obs, spec, "reset()")
    for _ in range(steps):
        result = backend.step(hold_action(obs, spec))
        check_step_result(result, spec)
        obs = result.obs
        if result.done:
            break


class BackendConformance:
    """Pytest checks every RobotBackend must pass. Override ``make_backend`` and set ``task``."""

    task: str = ""
    seed: int = 0

    @pytest.fixture
    def make_backend(self) -> Callable[[], RobotBackend]:
        raise NotImplementedError("override the make_backend fixture: return a zero-argument backend factory")

    @pytest.fixture
    def backend(self, make_backend):
        backend = make_backend()
        yield backend
        backend.close()

    def test_implements_protocol(self, backend):
        assert isinstance(backend, RobotBackend)
        assert isinstance(backend.spec, RobotSpec)
        assert backend.spec.fps > 0

    def test_reset_and_steps_match_spec(self, backend):
        check_backend(backend, self.task, self.seed)

    def test_seeded_reset_is_reproducible(self, backend):
        first = backend.reset(self.task, self.seed).clone()
        backend.step(hold_action(first, backend.spec))
        second = backend.reset(self.task, self.seed)
        for key in list(first.keys()):
            assert torch.equal(first.get(key), second.get(key)), f"reset({self.seed}) differs in {key!r}"

    def test_rejects_wrong_action_shape(self, backend):
        backend.reset(self.task, self.seed)
        with pytest.raises((SchemaError, ValueError)):
            backend.step(torch.zeros(backend.spec.action_dim + 1))

    def test_holding_still_keeps_state(self, backend):
        obs = backend.reset(self.task, self.seed)
        state = obs.get(keys.STATE).clone()
        for _ in range(3):
            obs = backend.step(hold_action(obs, backend.spec)).obs
        drift = (obs.get(keys.STATE) - state).abs().max().item()
        assert drift < 0.1, f"holding the current state as the action moved the robot by {drift:.3f}"

    def test_context_manager_and_idempotent_close(self, make_backend):
        backend = make_backend()
        with backend as entered:
            assert entered is backend
        backend.close()  # a second close must not raise


class TeleoperatorConformance:
    """Pytest checks for Teleoperators. Override ``make_backend`` and ``make_teleoperator``; set ``task``."""

    task: str = ""
    seed: int = 0

    @pytest.fixture
    def make_backend(self) -> Callable[[], RobotBackend]:
        raise NotImplementedError("override the make_backend fixture")

    @pytest.fixture
    def make_teleoperator(self) -> Callable[[RobotBackend], Teleoperator]:
        raise NotImplementedError("override the make_teleoperator fixture: backend -> Teleoperator")

    def test_implements_protocol_and_polls(self, make_backend, make_teleoperator):
        with make_backend() as backend:
            teleop = make_teleoperator(backend)
            assert isinstance(teleop, Teleoperator)
            obs = backend.reset(self.task, self.seed)
            teleop.reset(self.task, self.seed)
            for _ in range(5):
                action = teleop.poll(obs)
                if action is not None:
                    assert isinstance(action, torch.Tensor)
                    assert tuple(action.shape) == (backend.spec.action_dim,)
                    assert torch.isfinite(action).all()
                obs = backend.step(action if action is not None else hold_action(obs, backend.spec)).obs
