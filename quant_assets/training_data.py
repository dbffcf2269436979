"""What `model_checkpoints` trains on, for one week: the partition's model picks the data.

Models (the static dimension of the week x model partitions):
- `transformer`, `itransformer`, `lstm`, `momentum`: seed 004's `FeaturePipeline` panel of the
  ML symbols' daily `prices` (walk-forward, registered `ml_<model>`; `model_predictions` reads
  their champions);
- `live_transformer` ... `live_momentum`: the live loop's `IncrementalBarFeatures` on bars of
  `interval` (registered `live_<model>`; `quant live` / `quant backtest` load them);
- `ppo`: the PPO allocator on the same bars' log returns (registered `ml_ppo`).
Bars come from the warehouse (`prices` for 1d, `intraday_bars` otherwise) or, with
`bars_source="replay"`, from the seeded simulated tape that `quant live` replays. Only data known
by the week's end is used.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, time, timedelta, timezone
from functools import cached_property
from typing import Any

import polars as pl
from dagster import Failure

from quant_resources.settings import get_settings
from quant_resources.warehouse import Warehouse

FORECASTERS = ("transformer", "itransformer", "lstm", "momentum")
LIVE_PREFIX = "live_"
TRAINED_MODELS = (*FORECASTERS, *(LIVE_PREFIX + m for m in FORECASTERS), "ppo")
"""The `model` dimension of `model_checkpoints`, in partition-key order."""
logger = logging.getLogger("quant_assets.learning")
OHLCV = ["date", "ticker", "open", "high", "low", "close", "volume"]
BAR_COLUMNS = ["timestamp", "symbol", "open", "high", "low", "close", "volume"]


def architecture(model: str) -> str:
    return model.removeprefix(LIVE_PREFIX)


def registered_name(model: str) -> str:
    """Registry name of a partition's model: `live_<net>` for the live loop's nets, else `ml_<model>`."""
    return model if model.startswith(LIVE_PREFIX) else f"ml_{model}"


def task_kind(model: str) -> str:
    return "ppo" if model == "ppo" else "bars" if model.startswith(LIVE_PREFIX) else "walk_forward"


def ml_prices(warehouse: Warehouse, until: date, since: date | None = None, symbols: list[str] | None = None) -> pl.DataFrame:
    """OHLCV of ``symbols`` (default the ML symbols) from ``since`` (default: the first stored day)
    to ``until``."""
    prices = warehouse.read("prices", since, until + timedelta(days=1), columns=OHLCV, read_only=False)
    if prices.is_empty():
        raise Failure(f"no prices up to {until}: materialize `prices` first (`quant download`)")
    symbols = symbols or default_symbols(prices["ticker"])
    missing = sorted(set(symbols) - set(prices["ticker"].unique()))
    if missing:
        logger.warning("ML symbols without prices up to %s: %s", until, missing)
    return prices.filter(pl.col("ticker").is_in(symbols))


def default_symbols(tickers: pl.Series) -> list[str]:
    """ML_SYMBOLS, else the first ML_MAX_SYMBOLS of ``tickers`` other than the benchmark."""
    settings = get_settings()
    if settings.ml_symbols:
        return list(settings.ml_symbols)
    tickers = tickers.unique().sort()
    return tickers.filter(tickers != settings.benchmark_ticker).head(settings.ml_max_symbols).to_list()


def warehouse_bars(warehouse: Warehouse, symbols: list[str], interval: str, since: date, until: date) -> pl.DataFrame:
    """Bars (timestamp, symbol, OHLCV) of ``symbols`` from the warehouse: daily `prices` for
    ``1d``, else the `intraday_bars` of that interval."""
    if interval == "1d":
        prices = ml_prices(warehouse, until, since, symbols)
        return prices.select(pl.col("date").cast(pl.Datetime("us", "UTC")).alias("timestamp"),
                             pl.col("ticker").alias("symbol"), *OHLCV[2:])
    if not warehouse.has_table("intraday_bars"):
        raise Failure(f"no `intraday_bars` in the warehouse for interval {interval}: materialize it first, "
                      "or train on the simulated tape (bars_source='replay', `quant train --source replay`)")
    bars = warehouse.read("intraday_bars", read_only=False, date_column="timestamp")
    end = datetime.combine(until + timedelta(days=1), time(0), tzinfo=timezone.utc)
    start = datetime.combine(since, time(0), tzinfo=timezone.utc)
    return bars.filter(pl.col("interval") == interval, pl.col("ticker").is_in(symbols),
                       pl.col("timestamp").is_between(start, end, closed="left")).rename({"ticker": "symbol"}).select(BAR_COLUMNS)


class WeekData:
    """Training data of one week, loaded once per kind and shared by that week's models."""

    def __init__(self, warehouse: Warehouse, config: Any, week: date) -> None:
        self.warehouse, self.config, self.week = warehouse, config, week
        self.week_end = week + timedelta(days=6)
        self.since = self.week_end - timedelta(days=round(365.25 * config.history_years))

    @cached_property
    def pipeline(self):
        from quant_lib.features.pipeline import FeaturePipeline

        self.prices = ml_prices(self.warehouse, self.week_end, self.since, self.config.symbols or None)
        pipeline = FeaturePipeline(forecast_horizon=1, target=self.config.target)
        X, y = pipeline.fit_transform(self.prices)
        return pipeline, X, y

    @cached_property
    def bars(self) -> pl.DataFrame:
        c = self.config
        if c.bars_source == "replay":
            from quant_assets.live_runner import replay_bars

            bars = replay_bars(c.symbols or ["AAPL"], c.interval, c.replay_bars, c.replay_seed)
        elif c.bars_source == "warehouse":
            bars = warehouse_bars(self.warehouse, c.symbols or default_symbols(
                self.warehouse.read("prices", columns=["ticker"], read_only=False)["ticker"]), c.interval, self.since, self.week_end)
        else:
            raise Failure(f"bars_source must be 'warehouse' or 'replay', got {c.bars_source!r}")
        end = datetime.combine(self.week_end + timedelta(days=1), time(0), tzinfo=timezone.utc)
        bars = bars.filter(pl.col("timestamp") < end)
        if bars.is_empty():
            raise Failure(f"no {c.interval} bars of {c.symbols or 'the ML symbols'} up to {self.week_end} ({c.bars_source})")
        return bars

    @cached_property
    def bar_parts(self):
        from quant_lib.live.offline_training import bar_training_parts

        return bar_training_parts(self.bars)

    @cached_property
    def returns(self):
        """(times, symbols, [T, N] log returns) on the timestamps every symbol has."""
        wide = (self.bars.sort("timestamp").pivot(on="symbol", index="timestamp", values="close")
                .drop_nulls().sort("timestamp"))
        symbols = sorted(c for c in wide.columns if c != "timestamp")
        closes = wide.select(symbols).to_numpy()
        import numpy as np

        return wide["timestamp"].to_list()[1:], symbols, np.diff(np.log(closes), axis=0)

    def payload(self, model: str) -> dict[str, Any]:
        c, kind = self.config, task_kind(model)
        sizes = json.loads(c.model_kwargs_json)
        base = {"kind": kind, "model": model, "architecture": architecture(model)}
        if kind == "walk_forward":
            from quant_lib.models.walk_forward import WalkForwardConfig

            pipeline, X, y = self.pipeline
            return {**base, "X": X, "y": y, "dates": pipeline.index_["date"].to_numpy(),
                    "groups": pipeline.index_["ticker"].to_numpy(), "feature_names": pipeline.feature_names,
                    "config": WalkForwardConfig(
                        seq_len=c.seq_len, forecast_horizon=c.forecast_horizon, val_dates=c.val_days,
                        test_dates=c.test_days, max_epochs=c.max_epochs, patience=c.patience, lr=c.lr, seed=c.seed,
                        device=get_settings().ml_device, model_kwargs=sizes.get(model, {}))}
        if kind == "bars":
            from quant_assets.live_runner import SMALL_NETS

            from quant_lib.live.offline_training import check_enough_bars

            parts, times, symbols = self.bar_parts
            try:
                check_enough_bars(parts, symbols, c.seq_len, 1 if model == "live_momentum" else 5, c.test_fraction)
            except ValueError as error:
                raise Failure(f"{model}: {error}") from error
            return {**base, "parts": parts, "times": times, "seq_len": c.seq_len, "epochs": c.max_epochs, "lr": c.lr,
                    "seed": c.seed, "model_kwargs": sizes.get(model, SMALL_NETS[architecture(model)]),
                    "val_fraction": c.test_fraction, "test_fraction": c.test_fraction}
        from quant_lib.models.ppo_training import split_returns

        times, symbols, returns = self.returns
        try:
            split_returns(returns, self.ppo_config())
        except ValueError as error:
            raise Failure(f"ppo on {', '.join(symbols)} ({len(returns)} common bars): {error}") from error
        return {**base, "returns": returns, "symbols": symbols, "times": times, "config": self.ppo_config()}

    def ppo_config(self):
        from quant_lib.models.ppo_training import PPOTrainingConfig

        c = self.config
        return PPOTrainingConfig(window=c.ppo_window, test_fraction=c.test_fraction, total_steps=c.ppo_steps,
                                 lr=c.ppo_lr, seed=c.seed)

    def state(self, model: str) -> dict[str, Any]:
        """What is stored beside the checkpoint (`pipeline.json`): the fitted pipeline state, or
        for the live nets and PPO the features / symbols and bars they were trained on."""
        kind = task_kind(model)
        if kind == "walk_forward":
            return self.pipeline[0].get_state()
        source = {"interval": self.config.interval, "bars_source": self.config.bars_source,
                  "symbols": sorted(self.bars["symbol"].unique().to_list())}
        if kind == "bars":
            from quant_lib.live import IncrementalBarFeatures

            return {**source, "features": "IncrementalBarFeatures", "feature_names": list(IncrementalBarFeatures.feature_names)}
        return {**source, "window": self.config.ppo_window}

    def champion_loss(self, model: str, checkpoint: bytes, champion_state: dict, test_period: list[str]) -> float | None:
        """The champion's loss on the challenger's test block (None when not comparable)."""
        kind = task_kind(model)
        if kind == "walk_forward":
            from quant_lib.models.inference import evaluate_checkpoint

            first, last = (date.fromisoformat(d[:10]) for d in test_period)
            return evaluate_checkpoint(checkpoint, champion_state, self.prices, first, last)[0]
        if kind == "bars":
            from quant_lib.live.offline_training import evaluate_bar_checkpoint, split_test

            tail = split_test(self.bar_parts[0], self.config.seq_len, self.config.test_fraction)[1]
            return evaluate_bar_checkpoint(checkpoint, tail, self.config.seq_len)
        from quant_lib.models.ppo_training import evaluate_agent

        _, symbols, returns = self.returns
        return evaluate_agent(checkpoint, returns, symbols, self.ppo_config())

