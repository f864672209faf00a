"""A small synthetic store shared by the review tests (copied per test that writes labels)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from recap.data.store import EpisodeStore
from recap.testing.synthetic_store import fill_store, synthetic_spec

N_EPISODES = 12
LENGTH = 40


@pytest.fixture(scope="session")
def pristine_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("review") / "store"
    fill_store(root, N_EPISODES, LENGTH, spec=synthetic_spec(cameras=2))
    return root


@pytest.fixture
def store(pristine_store: Path, tmp_path: Path) -> EpisodeStore:
    root = tmp_path / "store"
    shutil.copytree(pristine_store, root)
    return EpisodeStore.open(root)
