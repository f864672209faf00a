"""Hermetic plugin tests on the pi06-tiny preset (tiny models run fastest on one thread)."""

import os

os.environ["RECAP_NO_ENTRYPOINTS"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402
from tensordict import NonTensorStack, TensorDict  # noqa: E402

from recap.data.spec import CameraSpec, RobotSpec  # noqa: E402
from recap.data.stats import NormStats  # noqa: E402
from recap.testing.policy_suite import make_batch  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread; restore the setting for other plugins' tests."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CHUNK = 10


@pytest.fixture
def spec() -> RobotSpec:
    """Two small cameras, 4-D state, 3-D actions and 2-D privileged env state."""
    cams = (CameraSpec("cam_high", 16, 16), CameraSpec("cam_left_wrist", 12, 20))
    return RobotSpec(cameras=cams, state_dim=4, action_dim=3, env_state_dim=2, joint_names=())


@pytest.fixture
def stats(spec) -> NormStats:
    g = torch.Generator().manual_seed(0)
    return NormStats.compute(
        {
            "observation.state": torch.randn(64, spec.state_dim, generator=g),
            "action": torch.randn(64, spec.action_dim, generator=g) * 2 + 1,
            "observation.environment_state": torch.randn(64, spec.env_state_dim, generator=g),
        }
    )


@pytest.fixture
def tiny_batch(spec) -> TensorDict:
    b = make_batch(spec, batch_size=4, chunk_size=CHUNK)
    b.set("subtask", NonTensorStack(*["grasp the cube", "", "lift", "move left"]))
    return b


@pytest.fixture
def policy(spec, stats, tiny_batch):
    """A pi06-tiny policy with its tokenizers fitted on the tiny batch."""
    from recap_pi06.config import PI06_TINY
    from recap_pi06.policy import Pi06Policy

    torch.manual_seed(0)
    policy = Pi06Policy(PI06_TINY, spec, stats)
    policy.fit_to_data(tiny_batch)
    return policy
