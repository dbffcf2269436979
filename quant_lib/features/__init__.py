"""Seed 004's features: technical indicators, calendar encodings and the FeaturePipeline."""

from quant_lib.features.calendar_features import TIME_FEATURE_NAMES, compute_time_features
from quant_lib.features.pipeline import FeaturePipeline, build_raw_features
from quant_lib.features.technical import TECHNICAL_FEATURE_NAMES, TECHNICAL_FEATURES, compute_technical_features

__all__ = [
    "TECHNICAL_FEATURES",
    "TECHNICAL_FEATURE_NAMES",
    "TIME_FEATURE_NAMES",
    "FeaturePipeline",
    "build_raw_features",
    "compute_technical_features",
    "compute_time_features",
]
