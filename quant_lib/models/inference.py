"""Predictions of a stored model (checkpoint + fitted pipeline state) on an OHLCV panel.

A row (date, ticker) gets a prediction when the ``seq_len`` rows of that ticker ending at that
date all have features (``FeaturePipeline.transform_frame``). Forecasters give H one-bar log
return forecasts (times the checkpoint's ``target_scale``): ``prediction`` is the next bar's,
``prediction_sum`` the H-bar total and ``signal`` its sign; the momentum net gives a position in
[-1, 1] (``prediction`` = ``signal`` = the position).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import polars as pl
import torch

from quant_lib.features.pipeline import FeaturePipeline
from quant_lib.models.base import BaseModel
from quant_lib.models.dataset import TimeSeriesDataset
from quant_lib.models.walk_forward import evaluate_losses


def load_model(checkpoint: bytes, pipeline_state: dict[str, Any]) -> tuple[BaseModel, dict[str, Any], FeaturePipeline]:
    """Rebuild model and pipeline; refuses a checkpoint whose features differ from the pipeline's."""
    pipeline = FeaturePipeline.from_state(pipeline_state)
    model, ckpt = BaseModel.load(checkpoint, feature_names=pipeline.feature_names)
    return model, ckpt, pipeline


def _windows(frame: pl.DataFrame, names: list[str], seq_len: int, horizon: int, first: date, last: date):
    data = TimeSeriesDataset(frame.select(names).to_numpy(), None, seq_len, 1, groups=frame["ticker"].to_numpy())
    dates = frame["date"].to_numpy()
    keep = (dates[data.ends] >= np.datetime64(first)) & (dates[data.ends] <= np.datetime64(last))
    ends = data.ends[keep]
    x = torch.stack([data.features[e - seq_len + 1 : e + 1] for e in ends]) if ends.size else torch.zeros(0, seq_len, len(names))
    target = frame["target"].to_numpy()
    tickers = frame["ticker"].to_numpy()
    offsets = np.clip(ends[:, None] + np.arange(horizon)[None, :], 0, len(frame) - 1)
    same = tickers[offsets] == tickers[ends][:, None]
    y = np.where(same, target[offsets], np.nan)
    return ends, x, y


@torch.no_grad()
def predict_panel(checkpoint: bytes, pipeline_state: dict[str, Any], prices: pl.DataFrame, first: date, last: date) -> pl.DataFrame:
    """date, ticker, prediction, prediction_sum, signal for window ends in [first, last]."""
    model, ckpt, pipeline = load_model(checkpoint, pipeline_state)
    frame = pipeline.transform_frame(prices)
    seq_len = int(model.config["seq_len"])
    ends, x, _ = _windows(frame, pipeline.feature_names, seq_len, 1, first, last)
    out = model(x).numpy().astype(np.float64) if len(ends) else np.zeros((0, 1))
    if model.architecture == "momentum":
        prediction = total = out[:, 0]
    else:
        out = out * float(ckpt["extra"].get("target_scale", 1.0))
        prediction, total = out[:, 0], out.sum(axis=1)
    return pl.DataFrame({
        "date": frame["date"].gather(ends), "ticker": frame["ticker"].gather(ends),
        "prediction": prediction, "prediction_sum": total, "signal": np.sign(total) if model.architecture != "momentum" else total,
    })


@torch.no_grad()
def evaluate_checkpoint(checkpoint: bytes, pipeline_state: dict[str, Any], prices: pl.DataFrame, first: date, last: date) -> tuple[float, float, int]:
    """(loss, naive loss, windows) of a stored model on windows ending in [first, last] whose
    targets are all known: the champion's score on the challenger's test block."""
    model, ckpt, pipeline = load_model(checkpoint, pipeline_state)
    frame = pipeline.transform_frame(prices)
    horizon = int(model.config["forecast_horizon"])
    ends, x, y = _windows(frame, pipeline.feature_names, int(model.config["seq_len"]), horizon, first, last)
    complete = np.isfinite(y).all(axis=1)
    if not complete.any():
        return float("nan"), float("nan"), 0
    out = model(x[torch.as_tensor(complete)]).numpy().astype(np.float64)
    if model.architecture != "momentum":
        out = out * float(ckpt["extra"].get("target_scale", 1.0))
    loss, naive = evaluate_losses(model.architecture, out, y[complete])
    return loss, naive, int(complete.sum())
