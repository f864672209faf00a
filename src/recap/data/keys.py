"""Names of the per-step and per-batch keys. They follow LeRobot so datasets move both ways.

A training batch is a ``TensorDict`` with batch size ``[B]``:

=============================  ==================  ===================================================
key                            shape / dtype       meaning
=============================  ==================  ===================================================
``observation.images.<cam>``   [B, H, W, 3] uint8  camera frame at t (raw pixels; models normalise)
``observation.state``          [B, S] float32      joint positions at t (raw units)
``observation.environment_state`` [B, E] float32   optional privileged object state at t (sim only)
``action``                     [B, C, A] float32   action chunk t..t+C-1 (raw units)
``action_is_pad``              [B, C] bool         True where t+k is past the episode end
``task``                       list[str] (B)       task prompt (non-tensor entry)
``subtask``                    list[str] (B)       sub-task text at t, "" if unknown (non-tensor)
``is_intervention``            [B] bool            step t was an operator correction
``advantage``                  [B] float32         from a label set (``recap label``)
``indicator``                  [B] bool            improvement indicator I_t from a label set
``mc_return``                  [B] float32         normalised Monte-Carlo return R_t in [-1, 0]
``episode_index``              [B] int64           row of the episode in the sampled view
``frame_index``                [B] int64           t
=============================  ==================  ===================================================

An observation passed to ``Policy.sample_actions`` / ``ValueEstimator.predict`` holds the observation keys
plus ``task`` (and optionally ``subtask``) with batch size ``[B]``.
"""

from __future__ import annotations

IMAGE_PREFIX = "observation.images."
STATE = "observation.state"
ENV_STATE = "observation.environment_state"
ACTION = "action"
ACTION_IS_PAD = "action_is_pad"
TASK = "task"
SUBTASK = "subtask"
IS_INTERVENTION = "is_intervention"
ADVANTAGE = "advantage"
INDICATOR = "indicator"
MC_RETURN = "mc_return"
EPISODE_INDEX = "episode_index"
FRAME_INDEX = "frame_index"
TIMESTAMP = "timestamp"

TEXT_KEYS = (TASK, SUBTASK)


def image_key(camera: str) -> str:
    """The batch key of a camera's frames, e.g. ``observation.images.cam_high``."""
    return IMAGE_PREFIX + camera
