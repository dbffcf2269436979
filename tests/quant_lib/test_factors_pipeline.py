"""process_factors: winsorize -> z-score -> sector-neutralize, per date."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from quant_lib.factors import process_factors

SECTORS = ["Energy", "Financials", "Health Care", "Utilities"]


def _panel(n_dates: int = 6, n_tickers: int = 40, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = n_dates * n_tickers
    sector = np.tile(np.array(SECTORS)[np.arange(n_tickers) % len(SECTORS)], n_dates)
    sector_shift = {"Energy": 2.0, "Financials": -1.0, "Health Care": 0.5, "Utilities": 0.0}
    days = [date(2021, 1, 4) + timedelta(days=i) for i in range(n_dates)]
    return pl.DataFrame(
        {
            "date": pl.Series([d for d in days for _ in range(n_tickers)], dtype=pl.Date),
            "ticker": np.tile([f"T{i:02d}" for i in range(n_tickers)], n_dates),
            "sector": sector,
            "vsm": rng.standard_t(3, rows) + np.vectorize(sector_shift.get)(sector),
            "bab": rng.normal(size=rows) * 5 + 3,
        }
    )


def test_scores_are_standardized_and_sector_neutral() -> None:
    out = process_factors(_panel(), ["vsm", "bab"])
    assert out.columns == ["date", "ticker", "sector", "z_vsm", "z_bab"]
    for col in ("z_vsm", "z_bab"):
        assert out[col].is_finite().all()
        per_date = out.group_by("date").agg(pl.col(col).mean().alias("m"), pl.col(col).std().alias("s"))
        assert per_date["m"].abs().max() < 1e-12
        assert (per_date["s"] - 1.0).abs().max() < 1e-12
        per_sector = out.group_by("date", "sector").agg(pl.col(col).mean().alias("m"))
        assert per_sector["m"].abs().max() < 1e-12


def test_winsorizes_at_the_cross_sectional_quantiles() -> None:
    panel = _panel(n_dates=1, n_tickers=101).with_columns(
        pl.when(pl.col("ticker") == "T00").then(1e6).otherwise(pl.col("bab")).alias("bab")
    )
    plain = process_factors(panel, ["bab"], sector_col=None)
    no_winsor = process_factors(panel, ["bab"], sector_col=None, winsor=(0.0, 1.0))
    top = plain.filter(pl.col("ticker") == "T00")["z_bab"].item()
    assert top < 4.0
    assert no_winsor.filter(pl.col("ticker") == "T00")["z_bab"].item() > 9.0
    bab = panel["bab"].to_numpy()
    hi = np.quantile(bab, 0.99)
    clipped = np.clip(bab, np.quantile(bab, 0.01), hi)
    expected = (hi - clipped.mean()) / clipped.std(ddof=1)
    assert top == pytest.approx(expected, rel=1e-12)


def test_missing_values_are_excluded_and_stay_null() -> None:
    panel = _panel().with_columns(
        pl.when(pl.col("ticker").is_in(["T01", "T02"])).then(None).otherwise(pl.col("vsm")).alias("vsm"),
        pl.when(pl.col("ticker") == "T03").then(float("nan")).otherwise(pl.col("bab")).alias("bab"),
    )
    out = process_factors(panel, ["vsm", "bab"])
    assert out.filter(pl.col("ticker").is_in(["T01", "T02"]))["z_vsm"].null_count() == 2 * 6
    assert out.filter(pl.col("ticker") == "T03")["z_bab"].null_count() == 6
    present = out.drop_nulls("z_vsm").group_by("date").agg(pl.col("z_vsm").std().alias("s"))
    assert (present["s"] - 1.0).abs().max() < 1e-12


def test_too_few_names_or_no_dispersion_give_null() -> None:
    panel = pl.DataFrame(
        {
            "date": [date(2021, 1, 4)] * 2 + [date(2021, 1, 5)] * 4,
            "ticker": ["A", "B", "A", "B", "C", "D"],
            "sector": ["X"] * 6,
            "vsm": [1.0, 2.0, 5.0, 5.0, 5.0, 5.0],
        }
    )
    out = process_factors(panel, ["vsm"])
    assert out["z_vsm"].null_count() == 6


def test_singleton_sector_gets_zero_and_dates_are_independent() -> None:
    panel = _panel(n_dates=2, n_tickers=12).with_columns(
        pl.when(pl.col("ticker") == "T00").then(pl.lit("Solo")).otherwise(pl.col("sector")).alias("sector")
    )
    out = process_factors(panel, ["vsm"])
    assert out.filter(pl.col("ticker") == "T00")["z_vsm"].to_list() == [0.0, 0.0]
    first_day = panel.filter(pl.col("date") == date(2021, 1, 4))
    alone = process_factors(first_day, ["vsm"])
    assert alone.equals(out.filter(pl.col("date") == date(2021, 1, 4)))


def test_default_factor_names_and_bad_input() -> None:
    out = process_factors(_panel())
    assert out.columns == ["date", "ticker", "sector", "z_vsm", "z_bab"]
    with pytest.raises(ValueError, match="missing required columns \\['qmj'\\]"):
        process_factors(_panel(), ["vsm", "qmj"])
    with pytest.raises(ValueError, match="industry"):
        process_factors(_panel(), ["vsm"], sector_col="industry")
    with pytest.raises(ValueError, match="winsor"):
        process_factors(_panel(), ["vsm"], winsor=(0.9, 0.1))
