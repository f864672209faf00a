"""A batch missing what an extractor declares fails before training, naming the key and the run that makes it."""

from __future__ import annotations

import pytest

from recap.data import keys
from recap.errors import LabelError
from recap.testing.extractor_suite import TINY_SPEC
from recap.testing.policy_suite import make_batch
from recap.train.requirements import check_required_keys


def test_present_keys_pass():
    check_required_keys(make_batch(TINY_SPEC), (keys.ADVANTAGE, keys.INDICATOR), "awr")


@pytest.mark.parametrize("key", [keys.ADVANTAGE, keys.INDICATOR])
def test_missing_label_names_key_extractor_and_recap_label(key):
    batch = make_batch(TINY_SPEC).exclude(key)
    with pytest.raises(LabelError) as info:
        check_required_keys(batch, (keys.ADVANTAGE, keys.INDICATOR), "my-extractor")
    message = str(info.value)
    assert repr(key) in message and "'my-extractor'" in message
    assert "recap label" in message and "label_set" in message


def test_unknown_key_is_still_named():
    with pytest.raises(LabelError, match="'ref_flow'"):
        check_required_keys(make_batch(TINY_SPEC), ("ref_flow",), "custom")
