import pytest
from data_episodes import SPEC, make_steps

from recap.data.store import EpisodeStore


@pytest.fixture
def store(tmp_path):
    return EpisodeStore.create(tmp_path / "store", SPEC)


@pytest.fixture
def filled(store):
    """A store with 4 episodes: two tasks, every source, labelled and unlabelled, with sub-tasks on one."""
    specs = [
        (6, "pick", "demonstration", True, ["reach"] * 3 + ["grasp"] * 3),
        (9, "pick", "autonomous", False, None),
        (4, "place", "correction", True, None),
        (7, "place", "autonomous", None, None),
    ]
    for i, (length, task, source, success, subtasks) in enumerate(specs):
        store.add(
            make_steps(length, i),
            task=task,
            source=source,
            success=success,
            subtasks=subtasks,
            policy_version="v1" if i < 2 else "v2",
            robot_id="r1",
        )
    return store
