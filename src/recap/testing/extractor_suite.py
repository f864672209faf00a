"""Conformance suite for PolicyExtractor plugins: subclass and override the ``extractor`` fixture.

    class TestMyExtractor(ExtractorConformance):
        @pytest.fixture
        def extractor(self):
            return MyExtractor(MyConfig())

By default the suite trains the tiny built-in policy "mlp-flow" (``recap.builtins.mlp_flow``) on a synthetic labelled batch;
override ``make_policy`` / ``batch`` to run it on another policy (any policy passing ``PolicyConformance``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from tensordict import TensorDict

from recap.data import keys
from recap.data.spec import RobotSpec
from recap.errors import LabelError
from recap.protocols import DeploymentSettings, Policy, PolicyExtractor
from recap.testing.policy_suite import make_batch
from recap.testing.tiny_policy import mlp_flow_policy
from recap.train.requirements import check_required_keys

#: label keys a batch may carry; an extractor gets only those it declares in ``required_keys``
LABEL_KEYS = (keys.ADVANTAGE, keys.INDICATOR, keys.MC_RETURN, keys.IS_INTERVENTION)

TINY_SPEC = RobotSpec(cameras=(), state_dim=3, action_dim=2, env_state_dim=0, joint_names=())
#: config fields of the tiny "mlp-flow" policy the suite trains by default
TINY_POLICY = {"hidden": 32, "depth": 2, "chunk_size": 4, "embed_dim": 8, "task_buckets": 8}


def loss_terms(out: TensorDict) -> dict[str, torch.Tensor]:
    """The ``loss_*`` entries of an extractor's output."""
    return {k: v for k, v in out.items() if k.startswith("loss_")}


class ExtractorConformance:
    """Every extractor must satisfy these."""

    #: Adam learning rate of the few steps in the trainability test
    trainable_lr: float = 1e-4

    @pytest.fixture
    def extractor(self) -> PolicyExtractor:
        raise NotImplementedError("override the `extractor` fixture in your test class")

    @pytest.fixture
    def make_policy(self) -> Callable[[], Policy]:
        return lambda: mlp_flow_policy(TINY_SPEC, **TINY_POLICY)

    @pytest.fixture
    def batch(self) -> TensorDict:
        return make_batch(TINY_SPEC, batch_size=8, chunk_size=TINY_POLICY["chunk_size"])

    @pytest.fixture
    def policy(self, make_policy) -> Policy:
        torch.manual_seed(0)
        return make_policy()

    def _ready(self, extractor, policy) -> PolicyExtractor:
        extractor.setup(policy)
        return extractor

    def _minimal(self, extractor, batch: TensorDict) -> TensorDict:
        """The batch with only the label keys the extractor declares."""
        extra = [k for k in LABEL_KEYS if k not in extractor.required_keys and k in batch]
        return batch.exclude(*extra)

    def test_is_an_extractor(self, extractor):
        assert isinstance(extractor, PolicyExtractor)
        assert isinstance(extractor.required_keys, tuple)
        assert all(isinstance(k, str) for k in extractor.required_keys)
        assert isinstance(extractor.deployment, DeploymentSettings)

    def test_loss_terms_are_finite_scalars(self, extractor, policy, batch):
        out = self._ready(extractor, policy).loss(policy, self._minimal(extractor, batch))
        assert isinstance(out, TensorDict)
        assert out.batch_size == torch.Size([])
        terms = loss_terms(out)
        assert terms, f"no loss_* keys in {sorted(out.keys())}"
        for name, value in out.items():
            assert value.ndim == 0, f"{name} must be a scalar, has shape {tuple(value.shape)}"
            assert torch.isfinite(value).all(), f"{name} is not finite"
        for name, value in terms.items():
            assert value.requires_grad, f"{name} is detached from the policy's parameters"

    def test_backward_reaches_the_policy(self, extractor, policy, batch):
        out = self._ready(extractor, policy).loss(policy, self._minimal(extractor, batch))
        sum(loss_terms(out).values()).backward()
        grads = [p.grad for p in policy.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads), "the loss gives the policy no gradient"

    def test_declared_keys_are_enough_and_needed(self, extractor, policy, batch):
        minimal = self._minimal(extractor, batch)
        check_required_keys(minimal, extractor.required_keys, "under test")
        for key in extractor.required_keys:
            assert key in batch, f"the suite's batch has no {key!r}; override the `batch` fixture"
            with pytest.raises(LabelError, match=key):
                check_required_keys(minimal.exclude(key), extractor.required_keys, "under test")

    def test_batch_is_not_modified(self, extractor, policy, batch):
        minimal = self._minimal(extractor, batch)
        names = set(minimal.keys())
        before = {k: v.clone() for k, v in minimal.items() if isinstance(v, torch.Tensor)}
        self._ready(extractor, policy).loss(policy, minimal)
        assert set(minimal.keys()) == names, "the extractor added or removed batch keys (work on a copy)"
        for k, v in before.items():
            assert torch.equal(minimal.get(k), v), f"the extractor changed batch[{k!r}] in place"

    def test_a_training_step_lowers_the_loss_on_a_fixed_batch(self, extractor, policy, batch):
        """A few small Adam steps on one batch must reduce the summed loss (the loss is trainable, not inert).

        Small steps: trust-region objectives (PPO) get worse again once a large step leaves the region."""
        extractor = self._ready(extractor, policy)
        minimal = self._minimal(extractor, batch)
        opt = torch.optim.Adam(policy.parameters(), lr=self.trainable_lr)

        def total() -> torch.Tensor:
            torch.manual_seed(7)  # the same flow draws and dropout each evaluation
            return sum(loss_terms(extractor.loss(policy, minimal)).values())

        first = total().item()
        for _ in range(5):
            opt.zero_grad()
            total().backward()
            opt.step()
        assert total().item() < first
