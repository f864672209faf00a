"""A robot whose state carries the control tick, and policies whose chunks are stamped with it.

``ClockBackend`` puts the tick number in ``state[1]`` and executes actions as given. ``ClockPolicy`` returns a
chunk whose action i has ``action[1] = tick of the observation + i``: an action executed at tick t from a chunk
used at the right index has ``action[1] == t``. That makes skipped, repeated or reordered actions visible.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict

from recap.data import keys
from recap.data.spec import RobotSpec
from recap.protocols import StepResult

SPEC = RobotSpec(cameras=(), fps=50)


class ClockBackend:
    labels_success = False

    def __init__(self, time_limit: int = 60, on_tick=None):
        self.spec, self.time_limit, self.on_tick = SPEC, time_limit, on_tick
        self.executed: list[torch.Tensor] = []

    def reset(self, task: str, seed: int | None = None) -> TensorDict:
        self.t, self.executed = 0, []
        self.state = torch.zeros(14)
        return self._obs()

    def step(self, action: torch.Tensor) -> StepResult:
        if self.on_tick is not None:
            self.on_tick(self.t)
        self.executed.append(action.clone())
        self.state = action.clone()
        self.t += 1
        return StepResult(self._obs(), self.t >= self.time_limit, {})

    def _obs(self) -> TensorDict:
        state = self.state.clone()
        state[1] = float(self.t)
        return TensorDict({keys.STATE: state}, batch_size=[])

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ClockPolicy(torch.nn.Module):
    """Chunks stamped with the observation's tick; records what it was asked."""

    def __init__(self, chunk_size: int = 8):
        super().__init__()
        self.chunk_size, self.action_dim, self.input_cameras = chunk_size, 14, ()
        self.requests: list[int] = []

    def per_sample_loss(self, batch, indicator, *, flow_draws=None):
        raise NotImplementedError

    def sample_actions(self, obs, indicator=True, guidance=1.0, *, generator=None):
        state = obs.get(keys.STATE)
        self.requests.extend(int(t) for t in state[:, 1])
        chunk = torch.zeros(state.shape[0], self.chunk_size, 14)
        chunk[:, :, 1] = state[:, 1:2] + torch.arange(self.chunk_size, dtype=torch.float32)
        return chunk


class InpaintingClockPolicy(ClockPolicy):
    """A ClockPolicy with ``sample_flow`` that records the inpainting it was given."""

    def __init__(self, chunk_size: int = 8):
        super().__init__(chunk_size)
        self.inpaintings: list = []

    def sample_flow(self, obs, indicator=True, guidance=1.0, *, noise=None, inpainting=None, generator=None):
        self.inpaintings.append(inpainting)
        return self.sample_actions(obs, indicator, guidance)
