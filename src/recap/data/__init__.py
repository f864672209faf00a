"""Episodes: the schema, the crash-safe on-disk store, training windows and LeRobot v3 interop."""

from recap.data.sampler import WindowSampler, text
from recap.data.schema import SOURCES, Episode, EpisodeMeta, validate_steps
from recap.data.spec import CameraSpec, RobotSpec, aloha_spec
from recap.data.stats import FeatureStats, NormStats
from recap.data.store import ANY, EpisodeStore

__all__ = [
    "ANY",
    "SOURCES",
    "CameraSpec",
    "Episode",
    "EpisodeMeta",
    "EpisodeStore",
    "FeatureStats",
    "NormStats",
    "RobotSpec",
    "WindowSampler",
    "aloha_spec",
    "text",
    "validate_steps",
]
