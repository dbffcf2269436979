"""Meta-labeling (seed 000 §4.3): XGBoost meta-labeler with SHAP, point-in-time features,
purged-CV evaluation, AFML bet sizing, champion/challenger decisions. Imports xgboost lazily."""

from quant_lib.ml.evaluation import CVResult, log_loss, purged_cv, roc_auc, top_decile_precision
from quant_lib.ml.features import PRICE_FEATURES, meta_features, price_features
from quant_lib.ml.meta_labeler import BIAS_COLUMN, DEFAULT_PARAMS, MetaLabeler
from quant_lib.ml.sizing import bet_size
from quant_lib.ml.training import (
    MetaModelFit,
    PromotionDecision,
    challenge_champion,
    fit_meta_model,
    known_labels,
    promotion_decision,
    score_bets,
    training_frame,
)

__all__ = [
    "BIAS_COLUMN",
    "CVResult",
    "DEFAULT_PARAMS",
    "MetaLabeler",
    "MetaModelFit",
    "PRICE_FEATURES",
    "PromotionDecision",
    "bet_size",
    "challenge_champion",
    "fit_meta_model",
    "known_labels",
    "log_loss",
    "meta_features",
    "price_features",
    "promotion_decision",
    "purged_cv",
    "roc_auc",
    "score_bets",
    "top_decile_precision",
    "training_frame",
]
