"""A tiny deterministic robot for rollout tests: joint 0 must reach 1.0; success ends the episode."""

from __future__ import annotations

import torch
from tensordict import TensorDict

from recap.data import keys
from recap.data.spec import CameraSpec, RobotSpec
from recap.errors import SchemaError
from recap.protocols import StepResult

SPEC = RobotSpec(cameras=(CameraSpec("cam_high", 4, 6),), fps=50)


class ReachBackend:
    """Moves each joint at most ``max_step`` towards the commanded position; success when joint 0 is at 1.0."""

    labels_success = True

    def __init__(self, time_limit: int = 100, max_step: float = 0.1, judges_success: bool = True):
        self.spec = SPEC
        self.time_limit, self.max_step = time_limit, max_step
        self.judges_success = judges_success
        self.labels_success = judges_success
        self.closed = False

    def reset(self, task: str, seed: int | None = None) -> TensorDict:
        g = torch.Generator().manual_seed(0 if seed is None else seed)
        self.state = torch.rand(14, generator=g) * 0.2
        self.t = 0
        return self._obs()

    def step(self, action: torch.Tensor) -> StepResult:
        action = torch.as_tensor(action, dtype=torch.float32)
        if action.shape != (14,):
            raise SchemaError(f"action must have shape (14,), got {tuple(action.shape)}")
        self.state = self.state + (action - self.state).clamp(-self.max_step, self.max_step)
        self.t += 1
        reached = abs(float(self.state[0]) - 1.0) < 0.02
        timeout = self.t >= self.time_limit
        success = (True if reached else (False if timeout else None)) if self.judges_success else None
        stage = int(float(self.state[0]) > 0.5)
        return StepResult(
            self._obs(), reached or timeout, {"success": success, "stage": stage, "subtask": f"s{stage}"}
        )

    def _obs(self) -> TensorDict:
        image = torch.full((4, 6, 3), int(self.state[0].clamp(0, 1) * 255), dtype=torch.uint8)
        return TensorDict({keys.STATE: self.state.clone(), keys.image_key("cam_high"): image}, batch_size=[])

    def close(self) -> None:
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ReachDemonstrator:
    """Commands joint 0 to 1.0 (or ``target``), the rest held."""

    def __init__(self, target: float = 1.0):
        self.target = target
        self.resets = 0
        self.replans = 0

    def reset(self, task, seed):
        self.resets += 1

    def act(self, obs):
        action = obs.get(keys.STATE).clone()
        action[0] = self.target
        return action

    def replan(self):
        self.replans += 1


class CountingPolicy(torch.nn.Module):
    """A Policy whose chunk ramps joint 0 from the current state towards 1.0; counts inferences."""

    def __init__(self, chunk_size: int = 8):
        super().__init__()
        self.chunk_size, self.action_dim = chunk_size, 14
        self.input_cameras: tuple[str, ...] = ()
        self.calls: list[tuple[object, float]] = []

    def per_sample_loss(self, batch, indicator, *, flow_draws=None):
        raise NotImplementedError

    def sample_actions(self, obs, indicator=True, guidance=1.0, *, generator=None):
        assert obs.batch_size == torch.Size([1]) and obs.get("task").tolist() == ["reach"]
        self.calls.append((indicator, guidance))
        state = obs.get(keys.STATE)
        chunk = state[:, None, :].repeat(1, self.chunk_size, 1)
        steps = torch.arange(1, self.chunk_size + 1, dtype=torch.float32)
        chunk[:, :, 0] = (state[:, :1] + 0.1 * steps).clamp(max=1.0)
        return chunk
