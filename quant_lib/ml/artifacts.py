"""The files a registered meta-labeler version carries, as bytes (the registry stores them).

``model.json`` (xgboost JSON), ``features.json`` (ordered feature list), ``params.json``,
``shap_importance.csv`` (mean |SHAP| per feature), ``cv_folds.csv`` (purged-CV scores per fold),
``decision.json`` (the promotion check), ``shap_summary.png`` (beeswarm-style summary plot:
one dot per sample and feature, x = SHAP value, colour = feature value; matplotlib, imported
lazily, Agg backend).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
import polars as pl

from quant_lib.ml.meta_labeler import BIAS_COLUMN, MetaLabeler
from quant_lib.ml.training import MetaModelFit, PromotionDecision

MODEL_FILE = "model.json"
FEATURES_FILE = "features.json"
PARAMS_FILE = "params.json"


def _csv(frame: pl.DataFrame) -> bytes:
    return frame.write_csv().encode("utf-8")


def shap_summary_png(shap_values: pl.DataFrame, X: pl.DataFrame, max_features: int = 15, max_points: int = 2000) -> bytes:
    """Summary plot of SHAP values (features sorted by mean |SHAP|, most important on top)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    values = shap_values.drop(BIAS_COLUMN, strict=False)
    order = sorted(values.columns, key=lambda c: -float(np.mean(np.abs(values[c].to_numpy()))))[:max_features]
    rows = np.random.default_rng(0).permutation(values.height)[:max_points]
    figure, axis = plt.subplots(figsize=(8, 0.4 * len(order) + 1.5))
    for position, name in enumerate(reversed(order)):
        shap_column = values[name].to_numpy()[rows]
        feature = X[name].cast(pl.Float64).to_numpy()[rows]
        low, high = np.nanpercentile(feature, [5, 95]) if np.isfinite(feature).any() else (0.0, 1.0)
        colour = np.clip((feature - low) / (high - low if high > low else 1.0), 0, 1)
        jitter = np.random.default_rng(position).uniform(-0.25, 0.25, rows.size)
        axis.scatter(shap_column, position + jitter, c=np.nan_to_num(colour, nan=0.5), cmap="coolwarm", s=6, alpha=0.6)
    axis.set_yticks(range(len(order)), list(reversed(order)))
    axis.axvline(0.0, color="grey", linewidth=0.8)
    axis.set_xlabel("SHAP value (log-odds contribution to P(success))")
    axis.set_title("Meta-labeler SHAP summary (colour: feature value, blue low / red high)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def model_artifacts(fit: MetaModelFit, decision: PromotionDecision, X: pl.DataFrame, with_plot: bool = True) -> dict[str, bytes]:
    """Every file of a registered version (see the module docstring)."""
    decision_json = {k: v for k, v in asdict(decision).items() if k != "champion_folds"}
    files = {
        MODEL_FILE: fit.model.to_bytes(),
        FEATURES_FILE: json.dumps(fit.feature_names).encode("utf-8"),
        PARAMS_FILE: json.dumps(fit.params, sort_keys=True).encode("utf-8"),
        "shap_importance.csv": _csv(fit.importance),
        "cv_folds.csv": _csv(fit.cv.folds),
        "decision.json": json.dumps(decision_json, sort_keys=True, default=str).encode("utf-8"),
    }
    if with_plot:
        files["shap_summary.png"] = shap_summary_png(fit.model.explain(X), X)
    return files


def load_model(files: Mapping[str, bytes]) -> tuple[MetaLabeler, dict[str, Any]]:
    """(fitted labeler, params) from the bytes of ``model.json``, ``features.json``, ``params.json``."""
    features = json.loads(files[FEATURES_FILE])
    params = json.loads(files[PARAMS_FILE]) if PARAMS_FILE in files else {}
    return MetaLabeler.from_bytes(files[MODEL_FILE], features, params), params
