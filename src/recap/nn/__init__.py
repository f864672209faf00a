"""Modules shared by policies and value networks: normalisation with dataset statistics and the flow-matching
draws and loss pieces.

This layer sits between ``recap.protocols`` and ``recap.rl``: it may import ``recap.rl``, ``recap.data``,
``recap.config`` and ``recap.errors``, nothing above.
"""

from recap.nn.checkpoint_keys import rename_on_load
from recap.nn.flow import (
    ChunkShaped,
    draw_flow,
    flow_matching_path,
    masked_chunk_mean,
    sample_flow_time,
)
from recap.nn.normalizer import FeatureNormalizers, Normalizer
from recap.nn.rtc import guidance_weight, guided_velocity, inpainting_weights

__all__ = [
    "ChunkShaped",
    "FeatureNormalizers",
    "Normalizer",
    "draw_flow",
    "flow_matching_path",
    "guidance_weight",
    "guided_velocity",
    "inpainting_weights",
    "masked_chunk_mean",
    "rename_on_load",
    "sample_flow_time",
]
