"""The core's Policy conformance suite on pi06-tiny."""

import pytest
from recap_pi06.config import PI06_TINY
from recap_pi06.policy import Pi06Policy

from recap.testing.policy_suite import PolicyConformance, make_batch


class TestPi06Conformance(PolicyConformance):
    @pytest.fixture
    def make_policy(self, spec, stats):
        return lambda: Pi06Policy(PI06_TINY, spec, stats)

    @pytest.fixture
    def batch(self, tiny_batch):
        return tiny_batch


class TestImportedPi05Conformance(PolicyConformance):
    """A tiny pi0.5 in openpi's key layout, imported: every extractor trains it through the same two methods."""

    @pytest.fixture
    def make_policy(self, spec, stats, tmp_path):
        import safetensors.torch
        from recap_pi06.weights.importer import import_policy
        from test_pi06_import_pi05 import TINY_PI05, openpi_pi05_state

        safetensors.torch.save_file(openpi_pi05_state(), str(tmp_path / "model.safetensors"))
        return lambda: import_policy(str(tmp_path), TINY_PI05, spec, stats)[0]

    @pytest.fixture
    def batch(self, spec):
        from test_pi06_import_pi05 import TINY_PI05

        return make_batch(spec, batch_size=4, chunk_size=TINY_PI05.chunk_size)


class TestImportedPi0Conformance(PolicyConformance):
    """A tiny transformers ``PI0ForConditionalGeneration``, imported."""

    @pytest.fixture
    def make_policy(self, spec, stats, tmp_path):
        pytest.importorskip("transformers")
        from hf_fixtures import pi0
        from recap_pi06.config import PI0
        from recap_pi06.weights.importer import import_policy

        pi0(tmp_path, chunk=4, pad_dim=6)
        return lambda: import_policy(str(tmp_path), PI0, spec, stats)[0]

    @pytest.fixture
    def batch(self, spec):
        return make_batch(spec, batch_size=4, chunk_size=4)
