"""Conformance suite for AdvantageLabeler plugins: subclass and override the ``labeler`` fixture.

class TestMyLabeler(LabelerConformance):
    @pytest.fixture
    def labeler(self):
        return MyLabeler(MyConfig())
"""

from __future__ import annotations

import pytest
import torch

from recap.errors import LabelError
from recap.protocols import AdvantageLabeler, EpisodeToLabel


def make_episodes(n: int = 6, seed: int = 0) -> list[EpisodeToLabel]:
    """Episodes of two tasks, mixed outcomes and lengths, one with an intervention segment."""
    g = torch.Generator().manual_seed(seed)
    eps = []
    for i in range(n):
        length = 20 + 7 * i
        values = -torch.rand(length, generator=g)
        interv = torch.zeros(length, dtype=torch.bool)
        if i == 1:
            interv[5:9] = True
        eps.append(EpisodeToLabel(f"ep{i}", "task-a" if i % 2 else "task-b", i % 3 != 0, values, interv))
    return eps


class LabelerConformance:
    """Every labeler must satisfy these."""

    @pytest.fixture
    def labeler(self) -> AdvantageLabeler:
        raise NotImplementedError("override the `labeler` fixture in your test class")  # abstract fixture

    def test_is_an_advantage_labeler(self, labeler):
        assert isinstance(labeler, AdvantageLabeler)

    def test_labels_every_step(self, labeler):
        eps = make_episodes()
        res = labeler.label(eps, {"task-a": 100, "task-b": 100})
        assert set(res.episodes) == {e.episode_id for e in eps}
        for ep in eps:
            lab = res.episodes[ep.episode_id]
            for key in ("advantage", "indicator"):
                assert lab[key].shape == ep.values.shape, key
            assert lab["indicator"].dtype == torch.bool
            assert torch.isfinite(lab["advantage"]).all()
        assert set(res.thresholds) == {"task-a", "task-b"}

    def test_interventions_positive(self, labeler):
        eps = make_episodes()
        res = labeler.label(eps, {"task-a": 100, "task-b": 100})
        assert res.episodes["ep1"]["indicator"][5:9].all()

    def test_unlabelled_episode_refused(self, labeler):
        eps = make_episodes(2)
        bad = EpisodeToLabel("nolabel", "task-a", None, torch.zeros(5), torch.zeros(5, dtype=torch.bool))
        with pytest.raises(LabelError, match="nolabel"):
            labeler.label([*eps, bad], {"task-a": 100, "task-b": 100})

    def test_deterministic(self, labeler):
        eps = make_episodes()
        a = labeler.label(eps, {"task-a": 100, "task-b": 100})
        b = labeler.label(eps, {"task-a": 100, "task-b": 100})
        for k in a.episodes:
            assert torch.equal(a.episodes[k]["indicator"], b.episodes[k]["indicator"])
