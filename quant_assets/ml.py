"""The `ml` group: triple-barrier labels, the weekly XGBoost meta-labeler with its champion /
challenger registry, and the daily meta-confidence of each ranked bet (seed 000 §4.3, §4.6.4).

- `barrier_labels` (daily, keyed by `touch_date`): labels of the ranked bets whose barrier was
  touched that day, with the bets' features at entry. A partition only holds what was known that day.
- `meta_model` (weekly): trains on every label known by the week's Friday, scores it with purged
  walk-forward CV (embargo), logs the run to MLflow and registers a version of `meta_labeler` with
  the alias `challenger`. Its blocking check `promotion` passes when the CV AUC beats 0.5 by
  `auc_margin` and is not worse than the champion's configuration refitted on the same folds.
- `meta_champion` (weekly): moves the alias `champion` to the challenger - it runs only after the
  blocking check passed (and re-reads the recorded decision); the registry's history is in its
  materialization metadata.
- `meta_confidence` (daily): P(success) and the AFML bet size of each ranked bet from
  `models:/meta_labeler@champion`; empty, with the reason logged, while there is no champion.

mlflow, xgboost, numba and matplotlib are imported inside the asset bodies (start-up time).
"""


import json
from datetime import timedelta
from typing import Any

import polars as pl
from dagster import AssetExecutionContext, AssetIn, Config, Failure, MetadataValue, Output, asset
from pydantic import Field

from quant_assets.checks import check_specs, to_check_results
from quant_assets.partitions import daily_asset, history_input, partition_dates, weekly_partitions
from quant_assets.reporting import summary_section, text_table
from quant_lib.data.quality import CheckOutcome
from quant_lib.factors import to_markdown
from quant_resources.model_registry import ModelRegistry, ModelRegistryResource, RegistryUnavailableError
from quant_resources.warehouse import WAREHOUSE_POOL, WarehouseResource

MODEL_NAME = "meta_labeler"
EXPERIMENT = "meta_labeler"
MAX_HOLDING_LIMIT = 30
"""Largest `max_holding` the daily label history covers (rankings read before the partition)."""
BET_HISTORY_DAYS = MAX_HOLDING_LIMIT + 10
PRICE_HISTORY_DAYS = 126 + 100 + MAX_HOLDING_LIMIT + 10
"""Price partitions before a label or bet: the longest feature window (126), the volatility span
(at most 100) and the holding period."""

ML_DAILY = daily_asset("ml")
ML_WEEKLY = dict(
    partitions_def=weekly_partitions, pool=WAREHOUSE_POOL, io_manager_key="warehouse_io_manager",
    group_name="ml", kinds={"duckdb", "polars", "mlflow", "xgboost"}, metadata={"partition_expr": "week"},
)  # fmt: skip


class BetSpecConfig(Config):
    """Which ranked bets are labelled and scored, and how (`quant_lib.ml.dataset.LabelingSpec`)."""

    top_n: int = Field(20, description="Best-ranked names that are bets each rebalance day.")
    rebalance_every: int = Field(1, description="Bets every N-th ranking day.")
    profit_taking: float = Field(1.0, description="Upper barrier in daily volatilities (0: off).")
    stop_loss: float = Field(1.0, description="Lower barrier in daily volatilities (0: off).")
    max_holding: int = Field(10, description=f"Vertical barrier in trading days (<= {MAX_HOLDING_LIMIT}).")
    vol_span: int = Field(50, description="EWM span (days) of the daily volatility target (<= 100).")
    use_high_low: bool = Field(False, description="Check intraday highs/lows (stop wins within a bar).")
    horizon_target: bool = Field(True, description="Barrier unit = daily volatility x sqrt(max_holding) (else the daily volatility).")

    def spec(self):
        from quant_lib.ml.dataset import LabelingSpec

        if self.max_holding > MAX_HOLDING_LIMIT or self.vol_span > 100:
            raise Failure(f"max_holding <= {MAX_HOLDING_LIMIT} and vol_span <= 100 (history read), got {self.max_holding}, {self.vol_span}")
        return LabelingSpec(
            self.top_n, self.rebalance_every, (self.profit_taking, self.stop_loss), self.max_holding, self.vol_span, self.use_high_low,
            self.horizon_target,
        )  # fmt: skip


class MetaModelConfig(Config):
    """Training window, XGBoost parameters (seed defaults), CV and the promotion margin."""

    history_years: float = Field(3.0, description="Years of labels (by touch date) up to the week's Friday.")
    n_estimators: int = 100
    max_depth: int = 4
    learning_rate: float = 0.1
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    n_splits: int = Field(6, description="Purged walk-forward blocks (the first only trains).")
    embargo_pct: float = Field(0.01, description="Embargo after each test block, fraction of labels.")
    auc_margin: float = Field(0.02, description="The challenger's CV AUC must exceed 0.5 + auc_margin.")
    oldest_weight: float = Field(1.0, description="Time decay of the sample weights: weight of the oldest label (1: none).")
    min_labels: int = Field(200, description="Known labels needed to train.")
    exclude_features: list[str] = Field([], description="Features left out of the model.")
    shap_plot: bool = Field(True, description="Log the SHAP summary plot (matplotlib).")

    def params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("n_estimators", "max_depth", "learning_rate", "subsample", "colsample_bytree")}


class MetaConfidenceConfig(BetSpecConfig):
    bet_size_step: float = Field(0.1, description="Discretization step of the AFML bet size.")


def open_registry(resource: ModelRegistryResource) -> ModelRegistry:
    """The registry, checked reachable; an unreachable one fails the asset before any write."""
    registry = resource.get()
    try:
        registry.client()
    except RegistryUnavailableError as error:
        raise Failure(str(error)) from error
    return registry


@asset(
    **{**ML_DAILY, "metadata": {"partition_expr": "touch_date"}},
    ins={
        "prices": history_input("prices", PRICE_HISTORY_DAYS),
        "rankings": history_input("rankings", BET_HISTORY_DAYS),
        "regime": history_input("regime", BET_HISTORY_DAYS),
        "fundamentals": history_input("fundamentals", BET_HISTORY_DAYS),
    },
    description="Triple-barrier labels of the ranked bets touched on the day (pt / sl / vertical), with the bets' features at entry.",
)
def barrier_labels(
    context: AssetExecutionContext, config: BetSpecConfig, prices: pl.DataFrame, rankings: pl.DataFrame, regime: pl.DataFrame,
    fundamentals: pl.DataFrame,
):  # fmt: skip
    from quant_lib.ml.dataset import barrier_label_table

    first, last = partition_dates(context)
    table = barrier_label_table(prices, rankings, regime, config.spec(), first, last, fundamentals)
    counts = dict(table.group_by("barrier").len().iter_rows()) if table.height else {}
    context.log.info(f"barrier_labels {first}..{last}: {table.height} labels {counts}")
    return Output(
        table,
        metadata={
            "labels": table.height, "barriers": MetadataValue.json({str(k): int(v) for k, v in counts.items()}),
            "success_rate": float(table["meta_label"].mean() or 0.0) if table.height else 0.0,
        },
    )  # fmt: skip


@asset(
    **ML_WEEKLY,
    deps=["barrier_labels", "prices"],
    check_specs=check_specs("meta_model", [("promotion", "Purged-CV AUC > 0.5 + auc_margin and not worse than the champion on the same folds.", True)]),
    description="Weekly XGBoost meta-labeler on labels known by Friday: purged walk-forward CV, SHAP, MLflow run, registered as `challenger`.",
)
def meta_model(context: AssetExecutionContext, config: MetaModelConfig, warehouse: WarehouseResource, model_registry: ModelRegistryResource):
    from quant_lib.ml import challenge_champion, fit_meta_model, training_frame
    from quant_lib.ml.dataset import feature_columns

    registry = open_registry(model_registry)
    week_start, week_end = partition_dates(context)
    labels, prices, data_version = _training_inputs(warehouse, week_end, config.history_years)
    available = feature_columns(labels)
    names = [n for n in available if n not in config.exclude_features]
    train = training_frame(labels, labels, available, prices, week_end, config.oldest_weight)
    if train.height < max(config.min_labels, 2 * config.n_splits):
        raise Failure(f"{train.height} labels known by {week_end} (< min_labels {config.min_labels}): backfill barrier_labels first")
    fit = fit_meta_model(train, names, config.params(), config.n_splits, config.embargo_pct)
    decision = challenge_champion(train, fit, _champion_config(registry), config.auc_margin, config.n_splits, config.embargo_pct)
    version = _register(registry, fit, decision, train.select(names), week_start, data_version, config)
    table = _out_of_sample(train, fit, week_start, version.version)
    context.log.info(f"meta_model v{version.version}: {decision.reason}")
    yield Output(table, metadata=_model_metadata(fit, decision, version, registry, data_version))
    yield from to_check_results([CheckOutcome("promotion", decision.passed, decision.reason, details=_decision_details(decision))])


@asset(
    **ML_WEEKLY,
    deps=["meta_model"],
    description="Moves the alias `champion` of `meta_labeler` to the week's challenger (only after meta_model's blocking check passed).",
)
def meta_champion(context: AssetExecutionContext, model_registry: ModelRegistryResource):
    registry = open_registry(model_registry)
    week_start, _ = partition_dates(context)
    challenger = registry.get(MODEL_NAME, "challenger")
    if challenger is None or challenger.tags.get("week") != week_start.isoformat():
        raise Failure(f"no challenger registered for the week of {week_start}: materialize meta_model first")
    decision = json.loads(registry.load_artifact(MODEL_NAME, challenger.version, "decision.json"))
    previous = registry.get(MODEL_NAME, "champion")
    if decision["passed"]:
        registry.promote(MODEL_NAME, challenger.version)
    champion = registry.get(MODEL_NAME, "champion")
    row = {
        "week": week_start, "challenger_version": challenger.version, "previous_champion": previous.version if previous else None,
        "champion_version": champion.version if champion else None, "promoted": bool(decision["passed"]), "reason": decision["reason"],
    }  # fmt: skip
    context.log.info(f"meta_champion: champion v{row['champion_version']} (was v{row['previous_champion']}); {decision['reason']}")
    return Output(pl.DataFrame([row]), metadata={**{k: str(v) for k, v in row.items()}, "registry_history": MetadataValue.md(_history_markdown(registry))})


@asset(
    **ML_DAILY,
    ins={
        "prices": history_input("prices", PRICE_HISTORY_DAYS), "rankings": AssetIn("rankings"), "regime": AssetIn("regime"),
        "fundamentals": AssetIn("fundamentals"),
    },  # fmt: skip
    description="P(success) and AFML bet size of each ranked bet from models:/meta_labeler@champion (empty while there is no champion).",
)
def meta_confidence(
    context: AssetExecutionContext, config: MetaConfidenceConfig, prices: pl.DataFrame, rankings: pl.DataFrame,
    regime: pl.DataFrame, fundamentals: pl.DataFrame, model_registry: ModelRegistryResource,
):  # fmt: skip
    from quant_lib.ml import score_bets
    from quant_lib.ml.dataset import bet_table

    first, last = partition_dates(context)
    loaded = _load_champion(model_registry)
    if isinstance(loaded, str):
        context.log.warning(f"meta_confidence {first}..{last}: empty, {loaded}")
        return Output(_empty_confidence(), metadata={"reason": loaded, "bets": 0})
    model, version = loaded
    bets, _ = bet_table(prices, rankings, regime, config.spec(), first, last, fundamentals)
    bets = bets.with_columns(pl.lit(None, pl.Float64).alias(n) for n in model.feature_names if n not in bets.columns)
    scored = score_bets(model, bets, config.bet_size_step).with_columns(pl.lit(version, pl.Int64).alias("model_version"))
    skipped = int((scored["bet_size"] <= 0).sum())
    context.log.info(f"meta_confidence {first}..{last}: {scored.height} bets scored by v{version}, {skipped} sized <= 0")
    return Output(scored, metadata={"bets": scored.height, "skipped_bets": skipped, "model_version": version,
                                    "mean_probability": float(scored["probability"].mean() or 0.0)})


def _empty_confidence() -> pl.DataFrame:
    return pl.DataFrame(schema={"date": pl.Date, "ticker": pl.String, "probability": pl.Float64, "bet_size": pl.Float64, "model_version": pl.Int64})


def _load_champion(resource: ModelRegistryResource):
    """(model, version) of the champion, or the reason there is none."""
    from quant_lib.ml.artifacts import FEATURES_FILE, MODEL_FILE, PARAMS_FILE, load_model

    registry = resource.get()
    if not registry.store_exists():
        return f"no model registry yet at {registry.tracking_uri} (no champion)"
    registry = open_registry(resource)
    champion = registry.get(MODEL_NAME, "champion")
    if champion is None:
        return f"registered model {MODEL_NAME!r} has no champion yet (no challenger has passed the promotion check)"
    files = {f: registry.load_artifact(MODEL_NAME, champion.version, f) for f in (MODEL_FILE, FEATURES_FILE, PARAMS_FILE)}
    return load_model(files)[0], champion.version


def _training_inputs(warehouse: WarehouseResource, week_end, history_years: float):
    wh = warehouse.get()
    since = week_end - timedelta(days=round(365.25 * history_years))
    if not wh.has_table("barrier_labels"):
        raise Failure("no barrier_labels table: materialize barrier_labels over the training window first")
    labels = wh.read("barrier_labels", since, week_end + timedelta(days=1), date_column="touch_date", read_only=False)
    first_entry = labels["date"].min() if labels.height else since
    prices = wh.read("prices", first_entry, week_end + timedelta(days=1), columns=["date", "ticker"], read_only=False)
    version = {"barrier_labels": {"rows": labels.height, "touch_dates": [str(since), str(week_end)]},
               "prices": {"rows": prices.height, "first_date": str(first_entry)}}  # fmt: skip
    return labels, prices, version


def _champion_config(registry: ModelRegistry):
    from quant_lib.ml.artifacts import FEATURES_FILE, PARAMS_FILE

    champion = registry.get(MODEL_NAME, "champion")
    if champion is None:
        return None
    load = lambda name: json.loads(registry.load_artifact(MODEL_NAME, champion.version, name))  # noqa: E731
    return load(PARAMS_FILE), load(FEATURES_FILE)


def _register(registry, fit, decision, X, week_start, data_version, config):
    from quant_lib.ml.artifacts import model_artifacts
    from quant_resources.experiments import flatten_params

    metrics = {**fit.metrics, **({"champion_cv_auc": decision.champion_auc} if decision.champion_auc is not None else {})}
    metrics = {k: v for k, v in metrics.items() if v == v}
    tags = {"week": week_start.isoformat(), "promotion_passed": str(decision.passed), "promotion_reason": decision.reason,
            "features": ",".join(fit.feature_names)[:5000], **{f"data_version.{k}": v for k, v in flatten_params(data_version).items()}}  # fmt: skip
    params = {**fit.params, "n_splits": config.n_splits, "embargo_pct": config.embargo_pct, "auc_margin": config.auc_margin,
              "oldest_weight": config.oldest_weight, "history_years": config.history_years}  # fmt: skip
    artifacts = model_artifacts(fit, decision, X, with_plot=config.shap_plot)
    return registry.register(MODEL_NAME, artifacts, params=params, metrics=metrics, tags=tags, experiment=EXPERIMENT, alias="challenger")


def _out_of_sample(train: pl.DataFrame, fit, week_start, version: int) -> pl.DataFrame:
    """Walk-forward out-of-fold P(success) per training label (what backtests size with)."""
    from quant_lib.ml import bet_size

    probability = fit.cv.oof_probability
    return train.select("date", "ticker", "touch_date", "meta_label", "ret").with_columns(
        pl.Series("probability", probability), pl.Series("bet_size", bet_size(probability.clip(0, 1), step=0.1)),
        pl.lit(week_start).alias("week"), pl.lit(version, pl.Int64).alias("model_version"),
    ).with_columns(pl.col("probability").fill_nan(None), pl.col("bet_size").fill_nan(None))


def _model_metadata(fit, decision, version, registry, data_version) -> dict:
    return {
        "model_version": version.version, "run_id": version.run_id, "aliases": ", ".join(version.aliases),
        **{k: float(v) for k, v in fit.metrics.items() if v == v},
        "champion_cv_auc": float(decision.champion_auc) if decision.champion_auc is not None else "none",
        "promotion": decision.reason,
        "shap_importance": MetadataValue.md(to_markdown(fit.importance.head(15))),
        "cv_folds": MetadataValue.md(to_markdown(fit.cv.folds)),
        "features": fit.feature_names,
        "data_version": MetadataValue.json(data_version),
        "mlflow_tracking_uri": registry.tracking_uri,
        "registry_history": MetadataValue.md(_history_markdown(registry)),
    }  # fmt: skip


def _decision_details(decision) -> dict:
    details = {"challenger_auc": float(decision.challenger_auc), "margin": float(decision.margin)}
    if decision.champion_auc is not None:
        details["champion_auc"] = float(decision.champion_auc)
    return details


def _history_markdown(registry: ModelRegistry) -> str:
    rows = [
        {"version": v.version, "aliases": ",".join(v.aliases), "week": v.tags.get("week", ""), "cv_auc": v.metrics.get("cv_auc"),
         "champion_cv_auc": v.metrics.get("champion_cv_auc"), "passed": v.tags.get("promotion_passed", ""), "created_at": str(v.created_at)}
        for v in registry.history(MODEL_NAME)
    ]  # fmt: skip
    return to_markdown(pl.DataFrame(rows)) if rows else "(no versions)"


def meta_summary(warehouse, week) -> str:
    """`make backtest`'s meta-labeling lines: the week's model, the champion decision and the
    strategy with and without meta-sizing side by side."""
    tables = set(warehouse.tables())
    if "meta_model" not in tables:
        return "\nMeta-labeler: no meta_model for this week"
    day_after = week + timedelta(days=1)
    model = warehouse.read("meta_model", week, day_after, date_column="week")
    lines = [f"\nMeta-labeler v{model['model_version'][0]}: {model.height} labels, walk-forward out-of-sample "
             f"P(success) for {model['probability'].drop_nulls().len()}"]  # fmt: skip
    if "meta_champion" in tables:
        champion = warehouse.read("meta_champion", week, day_after, date_column="week")
        if champion.height:
            row = champion.row(0, named=True)
            previous = f"v{row['previous_champion']}" if row["previous_champion"] is not None else "none"
            lines.append(f"Champion: v{row['champion_version']} (previous champion: {previous}); {row['reason']}")
    if "backtests" in tables:
        rows = warehouse.read("backtests", week, day_after, date_column="week").filter(pl.col("strategy").str.starts_with("ranking_top_n"))
        lines += ["With and without meta-sizing:", text_table(rows.select("strategy", "sharpe", "deflated_sharpe", "annualized_return", "max_drawdown", "volatility", "annual_turnover"))]
    return "\n".join(lines)


@summary_section
def _meta_confidence_summary(warehouse, latest) -> str:
    if "meta_confidence" not in warehouse.tables():
        return ""
    scored = warehouse.read("meta_confidence", latest, latest + timedelta(days=1))
    if scored.is_empty():
        return f"Meta-confidence on {latest}: none (no champion meta-labeler yet; `make backtest` trains one)"
    top = scored.sort("probability", descending=True).head(10).select("ticker", "probability", "bet_size")
    return f"Meta-confidence on {latest} (meta_labeler v{scored['model_version'][0]}, {scored.height} bets):\n" + text_table(top, "{:.3f}")
