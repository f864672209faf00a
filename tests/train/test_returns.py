import pytest
import torch

from recap import rl
from recap.data import keys
from recap.data.schema import EpisodeMeta
from recap.train.returns import mc_return_columns


def _meta(episode_id: str, task: str, length: int, success: bool | None) -> EpisodeMeta:
    return EpisodeMeta(episode_id, task, success, "autonomous", "", "sim", 50, length, "")


def test_mc_return_columns_normalise_by_each_tasks_longest_episode():
    eps = [_meta("a", "pick", 4, True), _meta("b", "pick", 6, False), _meta("c", "place", 3, True)]
    columns = mc_return_columns(eps, {"pick": 10, "place": 3})
    assert set(columns) == {"a", "b", "c"}
    assert torch.allclose(columns["a"][keys.MC_RETURN], torch.tensor([-0.3, -0.2, -0.1, 0.0]))
    assert torch.equal(columns["b"][keys.MC_RETURN], rl.normalized_mc_returns(6, False, 10))
    assert torch.allclose(columns["c"][keys.MC_RETURN], torch.tensor([-2 / 3, -1 / 3, 0.0]))


def test_no_columns_when_an_episode_has_no_success_label():
    assert mc_return_columns([_meta("a", "pick", 4, True), _meta("b", "pick", 5, None)], {"pick": 5}) is None


def test_an_episode_longer_than_the_given_maximum_normalises_by_its_own_length():
    (column,) = mc_return_columns([_meta("a", "pick", 5, True)], {"pick": 2}).values()
    assert column[keys.MC_RETURN][0] == pytest.approx(-0.8)
