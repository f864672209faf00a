"""The core's Policy conformance suite on pi06-tiny."""

import pytest
from recap_pi06.config import PI06_TINY
from recap_pi06.policy import Pi06Policy

from recap.testing.policy_suite import PolicyConformance


class TestPi06Conformance(PolicyConformance):
    @pytest.fixture
    def make_policy(self, spec, stats):
        return lambda: Pi06Policy(PI06_TINY, spec, stats)

    @pytest.fixture
    def batch(self, tiny_batch):
        return tiny_batch
