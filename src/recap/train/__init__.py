"""Generic training: the trainer (AdamW, warmup + cosine, clipping, EMA, exact resume, torchrun data parallel),
model checkpoints for policies and value estimators, and the store-labelling pipeline."""

from recap.train.checkpoint import load_policy, load_value, save_policy, save_value, value_model_id
from recap.train.trainer import TrainerConfig, TrainResult, train

__all__ = [
    "TrainResult",
    "TrainerConfig",
    "load_policy",
    "load_value",
    "save_policy",
    "save_value",
    "train",
    "value_model_id",
]
