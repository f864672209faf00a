import attrs
import pytest
import torch

from recap.builtins.labeler import RecapLabeler, RecapLabelerConfig
from recap.errors import LabelError, SchemaError
from recap.protocols import EpisodeToLabel
from recap.testing.labeler_suite import LabelerConformance, make_episodes


class TestRecapLabeler(LabelerConformance):
    @pytest.fixture(params=["nstep", "monte_carlo"])
    def labeler(self, request):
        return RecapLabeler(RecapLabelerConfig(mode=request.param, lookahead=5))


@pytest.mark.parametrize("fraction", [0.3, 0.4])
def test_positive_fraction_per_task_within_one_point(fraction):
    # Constant values make many advantages tie exactly; the fraction must still hold per task.
    eps = [
        EpisodeToLabel(
            f"e{i}",
            "t1" if i < 10 else "t2",
            i % 4 != 0,
            torch.full((50 + i,), -0.5),
            torch.zeros(50 + i, dtype=torch.bool),
        )
        for i in range(20)
    ]
    res = RecapLabeler(RecapLabelerConfig(positive_fraction=fraction, force_interventions=False)).label(
        eps, {"t1": 80, "t2": 80}
    )
    for task in ("t1", "t2"):
        ind = torch.cat([res.episodes[e.episode_id]["indicator"] for e in eps if e.task == task])
        assert abs(ind.float().mean().item() - fraction) <= 0.01
        assert res.positive_fraction[task] == pytest.approx(fraction, abs=0.01)


def test_per_task_override():
    res = RecapLabeler(
        RecapLabelerConfig(per_task_fraction={"task-a": 0.1}, force_interventions=False)
    ).label(make_episodes(), {"task-a": 100, "task-b": 100})
    assert res.positive_fraction["task-a"] == pytest.approx(0.1, abs=0.01)
    assert res.positive_fraction["task-b"] == pytest.approx(0.3, abs=0.01)


def test_pause_has_lower_nstep_advantage_than_progress():
    # Value rises steadily except during a pause (t in [20, 40)) where it stays flat.
    t = torch.arange(100.0)
    progress = torch.where(t < 20, t, torch.where(t < 40, torch.tensor(20.0), t - 20))
    values = -(80 - progress) / 100  # success after 100 steps; max length 100
    ep = EpisodeToLabel("p", "task", True, values, torch.zeros(100, dtype=torch.bool))
    res = RecapLabeler(RecapLabelerConfig(lookahead=10)).label([ep], {"task": 100})
    adv = res.episodes["p"]["advantage"]
    assert adv[22:30].max() < adv[50:60].min()


def test_mismatched_lengths_named():
    ep = EpisodeToLabel("x", "task", True, torch.zeros(4), torch.zeros(5, dtype=torch.bool))
    with pytest.raises(SchemaError, match="one entry per step"):
        RecapLabeler().label([ep], {"task": 10})


def test_config_validation():
    with pytest.raises(ValueError, match="positive_fraction"):
        RecapLabelerConfig(positive_fraction=1.5)


def _doomed_and_good() -> list[EpisodeToLabel]:
    # A success whose value rises steadily, and a failure whose value also rises for a while (a cube lifted
    # at a roll that drops it later): n-step windows inside the failure look like progress.
    t = torch.arange(100.0)
    good = EpisodeToLabel("good", "task", True, -(100 - t) / 100, torch.zeros(100, dtype=torch.bool))
    doomed_values = torch.where(t < 15, -0.95 + 0.012 * t, torch.full((100,), -0.77))
    intervened = torch.zeros(100, dtype=torch.bool)
    intervened[90:] = True
    doomed = EpisodeToLabel("doomed", "task", False, doomed_values, intervened)
    return [good, doomed]


def test_successful_only_keeps_positives_out_of_failed_episodes():
    eps = _doomed_and_good()
    plain = RecapLabeler(RecapLabelerConfig(lookahead=10, positive_fraction=0.4)).label(eps, {"task": 100})
    assert plain.episodes["doomed"]["indicator"][:15].any()  # the failure mode the setting exists for

    cfg = RecapLabelerConfig(lookahead=10, positive_fraction=0.4, successful_only=True)
    res = RecapLabeler(cfg).label(eps, {"task": 100})
    doomed, good = res.episodes["doomed"]["indicator"], res.episodes["good"]["indicator"]
    assert not doomed[:90].any() and doomed[90:].all()  # only its forced intervention steps
    assert good.float().mean().item() == pytest.approx(0.4, abs=0.01)  # the fraction counts successful steps
    assert res.positive_fraction["task"] == pytest.approx(0.2, abs=0.01)  # reported over all steps


def test_successful_only_needs_a_success():
    failed = [EpisodeToLabel("f", "task", False, torch.full((20,), -0.9), torch.zeros(20, dtype=torch.bool))]
    with pytest.raises(LabelError, match="no episode of task 'task' succeeded"):
        RecapLabeler(RecapLabelerConfig(successful_only=True)).label(failed, {"task": 20})


def test_failed_corrections_can_be_left_to_their_advantage():
    eps = _doomed_and_good()
    cfg = RecapLabelerConfig(lookahead=10, positive_fraction=0.4, successful_only=True)
    res = RecapLabeler(attrs.evolve(cfg, force_failed_interventions=False)).label(eps, {"task": 100})
    assert not res.episodes["doomed"]["indicator"].any()  # its correction failed: nothing forced
    forced = RecapLabeler(cfg).label(eps, {"task": 100}).episodes["doomed"]["indicator"]
    assert forced[90:].all()  # the paper's default: every correction step is positive
