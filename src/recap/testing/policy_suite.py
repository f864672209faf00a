"""Conformance suite for Policy plugins: subclass and override the ``make_policy`` and ``batch`` fixtures.

    class TestMyPolicy(PolicyConformance):
        @pytest.fixture
        def make_policy(self):
            return lambda: MyPolicy(MyConfig(tiny=True), spec, stats)   # a fresh policy per call

        @pytest.fixture
        def batch(self):
            return make_batch(spec, batch_size=4, chunk_size=8)          # a training batch for it

``make_policy`` must return a zero-argument callable building a fresh policy (the state_dict round trip
builds two). Every extractor trains through ``per_sample_loss`` and ``sample_actions`` only, so a policy that
passes here works with every extractor. Policies must honour ``batch["indicator_dropped"]`` (bool [B]):
advantage conditioning drops the indicator per sample through it.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
import safetensors.torch
import torch
from tensordict import NonTensorStack, TensorDict
from torch import nn

from recap.data import keys
from recap.data.spec import RobotSpec
from recap.nn import draw_flow
from recap.protocols import Policy

#: keys of a training batch that are not part of an observation
TRAINING_ONLY_KEYS = (
    keys.ACTION,
    keys.ACTION_IS_PAD,
    keys.ADVANTAGE,
    keys.INDICATOR,
    keys.MC_RETURN,
    keys.IS_INTERVENTION,
    keys.EPISODE_INDEX,
    keys.FRAME_INDEX,
    "indicator_dropped",
)


def make_batch(
    spec: RobotSpec,
    *,
    batch_size: int = 6,
    chunk_size: int = 4,
    seed: int = 0,
    tasks: tuple[str, ...] = ("pick up the cube", "insert the peg"),
) -> TensorDict:
    """A synthetic labelled training batch shaped like ``WindowSampler.batch`` output for ``spec``.

    Holds every observation key of the spec, an action chunk with the last steps of odd rows padded, task
    text, and the labels ``advantage``, ``indicator`` (some positive, some negative), ``mc_return`` and
    ``is_intervention``.
    """
    g = torch.Generator().manual_seed(seed)
    b, c = batch_size, chunk_size
    data: dict[str, torch.Tensor] = {
        keys.STATE: torch.randn(b, spec.state_dim, generator=g),
        keys.ACTION: torch.randn(b, c, spec.action_dim, generator=g),
        keys.ACTION_IS_PAD: torch.zeros(b, c, dtype=torch.bool),
        keys.ADVANTAGE: torch.randn(b, generator=g) * 0.1,
        keys.MC_RETURN: -torch.rand(b, generator=g),
        keys.IS_INTERVENTION: torch.zeros(b, dtype=torch.bool),
        keys.FRAME_INDEX: torch.arange(b),
    }
    data[keys.ACTION_IS_PAD][1::2, max(c // 2, 1) :] = True
    data[keys.INDICATOR] = data[keys.ADVANTAGE] > 0
    data[keys.INDICATOR][0], data[keys.INDICATOR][-1] = True, False
    data[keys.IS_INTERVENTION][0] = True
    if spec.env_state_dim > 0:
        data[keys.ENV_STATE] = torch.randn(b, spec.env_state_dim, generator=g)
    for cam in spec.cameras:
        data[cam.key] = torch.randint(0, 256, (b, *cam.shape), generator=g, dtype=torch.uint8)
    batch = TensorDict(data, batch_size=[b])
    batch.set(keys.TASK, NonTensorStack(*[tasks[i % len(tasks)] for i in range(b)]))
    return batch


def observation_of(batch: TensorDict) -> TensorDict:
    """The observation part of a training batch (what ``sample_actions`` receives)."""
    return batch.exclude(*[k for k in TRAINING_ONLY_KEYS if k in batch])


class PolicyConformance:
    """Every policy must satisfy these."""

    #: tolerance for comparing two computations that should agree up to float rounding
    atol: float = 1e-5

    @pytest.fixture
    def make_policy(self) -> Callable[[], Policy]:
        raise NotImplementedError(
            "override the `make_policy` fixture: return a callable building a fresh policy"
        )

    @pytest.fixture
    def batch(self) -> TensorDict:
        raise NotImplementedError(
            "override the `batch` fixture: return a small training batch for the policy"
        )

    @pytest.fixture
    def policy(self, make_policy) -> Policy:
        torch.manual_seed(0)
        return make_policy()

    def _draws(self, policy: Policy, batch: TensorDict, seed: int = 0) -> TensorDict:
        return draw_flow(policy, batch.batch_size[0], generator=torch.Generator().manual_seed(seed))

    def test_is_a_policy_module(self, policy):
        assert isinstance(policy, Policy)
        assert isinstance(policy, nn.Module)
        assert policy.chunk_size > 0 and policy.action_dim > 0
        assert isinstance(policy.input_cameras, tuple) and all(
            isinstance(c, str) for c in policy.input_cameras
        )

    def test_per_sample_loss_shapes_and_finite(self, policy, batch):
        size = batch.batch_size[0]
        for indicator in (None, batch[keys.INDICATOR], torch.ones(size, dtype=torch.bool)):
            losses = policy.per_sample_loss(batch, indicator)
            assert "flow" in losses
            for name, value in losses.items():
                assert value.shape == (size,), f"{name} has shape {tuple(value.shape)}, expected [{size}]"
                assert torch.isfinite(value).all(), name

    def test_loss_backward(self, policy, batch):
        losses = policy.per_sample_loss(batch, batch[keys.INDICATOR])
        total = sum(v.mean() for v in losses.values())
        total.backward()
        grads = [p.grad for p in policy.parameters() if p.grad is not None]
        assert grads, "no parameter received a gradient"
        assert all(torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)

    def test_flow_draws_reproduce_the_loss(self, policy, batch):
        ind = batch[keys.INDICATOR]
        a = policy.per_sample_loss(batch, ind, flow_draws=self._draws(policy, batch, 1))["flow"]
        b = policy.per_sample_loss(batch, ind, flow_draws=self._draws(policy, batch, 1))["flow"]
        c = policy.per_sample_loss(batch, ind, flow_draws=self._draws(policy, batch, 2))["flow"]
        torch.testing.assert_close(a, b, atol=self.atol, rtol=0)
        assert not torch.allclose(a, c), "different flow draws gave the same loss: are flow_draws ignored?"

    def test_loss_depends_on_indicator(self, policy, batch):
        size = batch.batch_size[0]
        draws = self._draws(policy, batch)
        pos = policy.per_sample_loss(batch, torch.ones(size, dtype=torch.bool), flow_draws=draws)["flow"]
        neg = policy.per_sample_loss(batch, torch.zeros(size, dtype=torch.bool), flow_draws=draws)["flow"]
        drop = policy.per_sample_loss(batch, None, flow_draws=draws)["flow"]
        assert not torch.allclose(pos, neg), "the indicator input does not change the loss"
        assert not torch.allclose(pos, drop), "dropping the indicator does not change the loss"

    def test_per_sample_indicator_dropout(self, policy, batch):
        size = batch.batch_size[0]
        draws = self._draws(policy, batch)
        ind = torch.ones(size, dtype=torch.bool)
        dropped = torch.arange(size) % 2 == 0
        masked = batch.clone()
        masked.set("indicator_dropped", dropped)
        mixed = policy.per_sample_loss(masked, ind, flow_draws=draws)["flow"]
        cond = policy.per_sample_loss(batch, ind, flow_draws=draws)["flow"]
        uncond = policy.per_sample_loss(batch, None, flow_draws=draws)["flow"]
        torch.testing.assert_close(mixed, torch.where(dropped, uncond, cond), atol=self.atol, rtol=1e-4)

    def test_padding_mask_is_used(self, policy, batch):
        """Padded chunk steps are left out of the loss: unmasking them changes exactly the padded rows."""
        pad = batch[keys.ACTION_IS_PAD]
        padded_rows = pad.any(-1)
        assert padded_rows.any() and not padded_rows.all(), (
            "the `batch` fixture should pad some rows, not all"
        )
        unmasked = batch.clone()
        unmasked.set(keys.ACTION_IS_PAD, torch.zeros_like(pad))
        draws = self._draws(policy, batch)
        a = policy.per_sample_loss(batch, batch[keys.INDICATOR], flow_draws=draws)["flow"]
        b = policy.per_sample_loss(unmasked, batch[keys.INDICATOR], flow_draws=draws)["flow"]
        torch.testing.assert_close(a[~padded_rows], b[~padded_rows], atol=self.atol, rtol=1e-4)
        assert ((a - b)[padded_rows].abs() > 1e-6).all(), "action_is_pad does not change the loss"

    def test_sample_shape_and_generator_determinism(self, policy, batch):
        obs = observation_of(batch)
        size = batch.batch_size[0]
        a = policy.sample_actions(obs, True, generator=torch.Generator().manual_seed(3))
        b = policy.sample_actions(obs, True, generator=torch.Generator().manual_seed(3))
        assert a.shape == (size, policy.chunk_size, policy.action_dim)
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, atol=self.atol, rtol=0)

    def test_guidance_semantics(self, policy, batch):
        obs = observation_of(batch)

        def sample(indicator, guidance=1.0):
            gen = torch.Generator().manual_seed(5)
            return policy.sample_actions(obs, indicator, guidance, generator=gen)

        cond, uncond, neg = sample(True), sample(None), sample(False)
        torch.testing.assert_close(sample(True, 1.0), cond, atol=self.atol, rtol=0)
        torch.testing.assert_close(sample(True, 0.0), uncond, atol=self.atol, rtol=1e-4)
        assert not torch.allclose(cond, neg), "conditioning on I = 1 and I = 0 sampled the same actions"
        assert not torch.allclose(sample(True, 2.0), cond), (
            "guidance 2 sampled the same actions as guidance 1"
        )

    def test_state_dict_round_trip(self, make_policy, policy, batch):
        # change the weights away from their initial values so a no-op load cannot pass
        losses = policy.per_sample_loss(batch, batch[keys.INDICATOR])
        sum(v.mean() for v in losses.values()).backward()
        with torch.no_grad():
            for p in policy.parameters():
                if p.grad is not None:
                    p.sub_(0.1 * p.grad.sign())
        state = {k: v.detach().clone().contiguous() for k, v in policy.state_dict().items()}
        blob = safetensors.torch.save(state)
        torch.manual_seed(123)
        other = make_policy()
        other.load_state_dict(safetensors.torch.load(io.BytesIO(blob).getvalue()), strict=True)
        draws = self._draws(policy, batch)
        ind = batch[keys.INDICATOR]
        torch.testing.assert_close(
            other.per_sample_loss(batch, ind, flow_draws=draws)["flow"],
            policy.per_sample_loss(batch, ind, flow_draws=draws)["flow"],
            atol=self.atol,
            rtol=1e-4,
        )
        obs = observation_of(batch)
        torch.testing.assert_close(
            other.sample_actions(obs, True, 1.5, generator=torch.Generator().manual_seed(0)),
            policy.sample_actions(obs, True, 1.5, generator=torch.Generator().manual_seed(0)),
            atol=self.atol,
            rtol=1e-4,
        )
