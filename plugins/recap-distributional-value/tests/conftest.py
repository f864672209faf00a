"""Hermetic plugin tests: no entry-point autoload; the process-wide registry holds this plugin only."""

import os

os.environ["RECAP_NO_ENTRYPOINTS"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from recap.plugins import load_registry  # noqa: E402
from recap.testing.registry import process_registry

# Tiny models train faster on one thread; on a shared 2-core machine two threads spin-wait (measured: the
# learning test 25 s on one thread, several minutes on two while other jobs ran).
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def registry():
    reg = load_registry(extra_plugins=["recap_distributional_value.plugin"], entrypoints=False)
    with process_registry(reg):
        yield reg
