"""Contracts between the parts of recap (runtime-checkable ``typing.Protocol`` classes) and value types."""

from recap.protocols.extractor import DeploymentSettings, PolicyExtractor
from recap.protocols.labeler import AdvantageLabeler, EpisodeToLabel, LabelResult
from recap.protocols.policy import FlowPolicy, Inpainting, Policy
from recap.protocols.robot import Demonstrator, RobotBackend, StepResult, Teleoperator
from recap.protocols.value import ValueEstimator
from recap.protocols.weights import WeightImporter, WeightImportRequest

__all__ = [
    "AdvantageLabeler",
    "DeploymentSettings",
    "Demonstrator",
    "EpisodeToLabel",
    "FlowPolicy",
    "Inpainting",
    "LabelResult",
    "Policy",
    "PolicyExtractor",
    "RobotBackend",
    "StepResult",
    "Teleoperator",
    "ValueEstimator",
    "WeightImportRequest",
    "WeightImporter",
]
