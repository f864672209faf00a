"""Bin centres, one-hot / two-hot targets and expected values (paper Eq. 1)."""

import pytest
import torch
from recap_distributional_value.bins import bin_centers, expected_value, one_hot, targets, two_hot

from recap.errors import SchemaError


def test_centres_span_minus_one_to_zero():
    c = bin_centers(201)
    assert c[0] == -1 and c[-1] == 0 and torch.allclose(c.diff(), torch.full((200,), 0.005))


def test_two_hot_mean_is_the_return_exactly():
    r = torch.tensor([-1.0, -0.73312, -0.5, -0.0012, 0.0])
    t = two_hot(r, 201)
    assert torch.allclose(t.sum(-1), torch.ones(5))
    assert torch.allclose(t @ bin_centers(201), r, atol=1e-6)
    assert (t > 0).sum(-1).max() <= 2


def test_one_hot_rounds_to_nearest_bin():
    r = torch.tensor([-0.7331, -0.0012])
    t = one_hot(r, 201)
    assert torch.allclose(t @ bin_centers(201), torch.tensor([-0.735, 0.0]))


def test_out_of_range_returns_are_clipped_and_nan_refused():
    assert torch.allclose(
        targets(torch.tensor([-3.0, 0.5]), 11, "two_hot") @ bin_centers(11), torch.tensor([-1.0, 0])
    )
    with pytest.raises(SchemaError, match="NaN"):
        two_hot(torch.tensor([float("nan")]), 11)


def test_expected_value_of_peaked_logits_is_that_centre():
    logits = torch.full((1, 201), -1e4)
    logits[0, 57] = 0.0
    assert expected_value(logits, bin_centers(201)).item() == pytest.approx(-1 + 57 / 200)
