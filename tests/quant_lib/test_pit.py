"""Point-in-time fundamentals snapshot: known answers, brute force, and the truncation test."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from quant_lib.data.pit import FundamentalsSnapshot, fundamentals_snapshot
from quant_lib.data.schemas import FUNDAMENTAL_FACT_COLUMNS, FUNDAMENTAL_METRICS, FUNDAMENTAL_SNAPSHOT_COLUMNS

D = date


def facts_frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=FUNDAMENTAL_FACT_COLUMNS, orient="row")


HAND_FACTS = facts_frame([
    ("AAA", D(2023, 12, 31), D(2024, 2, 14), "revenue", 100.0),
    ("AAA", D(2023, 12, 31), D(2024, 2, 14), "net_income", 10.0),
    ("AAA", D(2024, 3, 31), D(2024, 5, 15), "revenue", 110.0),
    ("AAA", D(2024, 1, 10), D(2024, 1, 10), "news_sentiment", 0.5),
    ("AAA", D(2024, 5, 20), D(2024, 5, 20), "news_sentiment", -0.2),
    ("BBB", D(2024, 3, 31), D(2024, 5, 1), "revenue", 50.0),
    ("BBB", D(2024, 3, 31), D(2024, 5, 1), "insider_mood", 1.0),
    ("BBB", D(2024, 3, 31), D(2024, 5, 2), "insider_mood", 2.0),
])


def test_known_answers_on_a_hand_built_example():
    result = fundamentals_snapshot(HAND_FACTS, [D(2024, 1, 1), D(2024, 2, 14), D(2024, 5, 15), D(2024, 6, 1)])
    assert isinstance(result, FundamentalsSnapshot)
    frame = result.frame
    assert frame.schema == pl.Schema(FUNDAMENTAL_SNAPSHOT_COLUMNS)
    assert frame.height == 8
    got = {
        (r["date"], r["ticker"]): (r["period_end"], r["report_date"], r["revenue"], r["net_income"], r["news_sentiment"])
        for r in frame.to_dicts()
    }
    assert got[(D(2024, 1, 1), "AAA")] == (None, None, None, None, None)
    assert got[(D(2024, 2, 14), "AAA")] == (D(2023, 12, 31), D(2024, 2, 14), 100.0, 10.0, 0.5)
    assert got[(D(2024, 5, 15), "AAA")] == (D(2024, 3, 31), D(2024, 5, 15), 110.0, 10.0, 0.5)
    assert got[(D(2024, 6, 1), "AAA")] == (D(2024, 3, 31), D(2024, 5, 15), 110.0, 10.0, -0.2)
    assert got[(D(2024, 5, 15), "BBB")] == (D(2024, 3, 31), D(2024, 5, 1), 50.0, None, None)
    assert result.unknown_metric_rows == 2
    assert result.unknown_metrics == ("insider_mood",)
    assert "insider_mood" not in frame.columns
    assert frame.select("date", "ticker").equals(frame.select("date", "ticker").sort("date", "ticker"))


def test_every_metric_is_a_column_even_when_absent():
    frame = fundamentals_snapshot(HAND_FACTS, [D(2024, 6, 1)]).frame
    for metric in FUNDAMENTAL_METRICS:
        assert metric in frame.columns
    assert frame["ebitda"].null_count() == frame.height


def test_fact_published_on_the_date_is_known_that_day_not_before():
    facts = facts_frame([("AAA", D(2024, 3, 31), D(2024, 5, 2), "eps_actual", 1.5)])
    frame = fundamentals_snapshot(facts, [D(2024, 5, 1), D(2024, 5, 2)]).frame
    assert frame["eps_actual"].to_list() == [None, 1.5]


def test_restatement_updates_value_but_not_the_latest_quarter():
    facts = facts_frame([
        ("AAA", D(2023, 12, 31), D(2024, 2, 10), "revenue", 100.0),
        ("AAA", D(2024, 3, 31), D(2024, 5, 10), "revenue", 120.0),
        ("AAA", D(2023, 12, 31), D(2024, 6, 1), "total_assets", 900.0),  # late restatement of Q4
    ])
    frame = fundamentals_snapshot(facts, [D(2024, 6, 2)]).frame
    row = frame.row(0, named=True)
    assert (row["period_end"], row["report_date"]) == (D(2024, 3, 31), D(2024, 5, 10))
    assert row["total_assets"] == 900.0 and row["revenue"] == 120.0


def test_same_day_ties_take_the_latest_period_and_null_masks_older_values():
    facts = facts_frame([
        ("AAA", D(2024, 3, 31), D(2024, 5, 1), "revenue", 2.0),
        ("AAA", D(2023, 12, 31), D(2024, 5, 1), "revenue", 1.0),
        ("AAA", D(2024, 4, 30), D(2024, 4, 30), "consensus_eps", 3.0),
        ("AAA", D(2024, 5, 3), D(2024, 5, 3), "consensus_eps", None),
    ])
    frame = fundamentals_snapshot(facts, [D(2024, 5, 2), D(2024, 5, 3)]).frame
    assert frame["revenue"].to_list() == [2.0, 2.0]
    assert frame["consensus_eps"].to_list() == [3.0, None]


def test_two_quarters_first_published_the_same_day():
    facts = facts_frame([
        ("AAA", D(2023, 9, 30), D(2024, 2, 1), "revenue", 1.0),
        ("AAA", D(2023, 12, 31), D(2024, 2, 1), "revenue", 2.0),
        ("AAA", D(2023, 12, 31), D(2024, 2, 1), "net_income", 0.2),
        ("AAA", D(2024, 2, 1), D(2024, 2, 1), "news_sentiment", 0.1),
    ])
    frame = fundamentals_snapshot(facts, [D(2024, 1, 31), D(2024, 2, 1), D(2024, 2, 2)]).frame
    assert frame.height == 3
    assert frame["period_end"].to_list() == [None, D(2023, 12, 31), D(2023, 12, 31)]
    assert frame["report_date"].to_list() == [None, D(2024, 2, 1), D(2024, 2, 1)]
    assert frame["revenue"].to_list() == [None, 2.0, 2.0]


def test_inputs_dates_as_series_unsorted_duplicates_and_ticker_subset():
    dates = pl.Series([D(2024, 6, 1), D(2024, 2, 14), D(2024, 6, 1)])
    frame = fundamentals_snapshot(HAND_FACTS, dates, tickers=["BBB", "ZZZ"]).frame
    assert frame.select("date", "ticker").rows() == [
        (D(2024, 2, 14), "BBB"), (D(2024, 2, 14), "ZZZ"), (D(2024, 6, 1), "BBB"), (D(2024, 6, 1), "ZZZ"),
    ]
    assert frame["revenue"].to_list() == [None, None, 50.0, None]
    assert fundamentals_snapshot(HAND_FACTS, []).frame.is_empty()


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="available_at"):
        fundamentals_snapshot(HAND_FACTS.drop("available_at"), [D(2024, 1, 1)])
    with pytest.raises(ValueError, match="dates"):
        fundamentals_snapshot(HAND_FACTS, pl.Series([1, 2]))


def random_facts(seed: int, n_tickers: int = 6, n_days: int = 400) -> pl.DataFrame:
    """Quarterly reports with random lags, sparse daily metrics, restatements and ties."""
    rng = np.random.default_rng(seed)
    start = D(2020, 1, 1)
    rows = []
    quarterly = ["revenue", "net_income", "book_equity", "eps_actual"]
    for t in range(n_tickers):
        ticker = f"T{t}"
        for q in range(n_days // 90 + 1):
            period_end = start + timedelta(days=90 * q)
            lag = int(rng.integers(20, 70))
            for metric in quarterly:
                if rng.random() < 0.85:
                    rows.append((ticker, period_end, period_end + timedelta(days=lag), metric, float(rng.normal())))
            if rng.random() < 0.3:  # restatement of a random metric, later
                rows.append((ticker, period_end, period_end + timedelta(days=lag + int(rng.integers(1, 100))),
                             str(rng.choice(quarterly)), float(rng.normal())))
        for day in rng.choice(n_days, size=n_days // 5, replace=False):
            when = start + timedelta(days=int(day))
            value = None if rng.random() < 0.05 else float(rng.normal())
            rows.append((ticker, when, when, "news_sentiment", value))
            rows.append((ticker, when, when, "made_up_metric", 1.0))
    return facts_frame(rows)


def brute_force(facts: pl.DataFrame, day: date, ticker: str) -> dict:
    """The definition, row by row: latest fact per metric with available_at <= day."""
    known = facts.filter((pl.col("ticker") == ticker) & (pl.col("available_at") <= day)).with_row_index("order")
    expected: dict = {}
    for metric in FUNDAMENTAL_METRICS:
        rows = known.filter(pl.col("metric") == metric).sort("available_at", "period_end", "order")
        expected[metric] = rows["value"][-1] if rows.height else None
    quarterly = known.filter(pl.col("metric").is_in(["revenue", "net_income", "book_equity", "eps_actual"]))
    if quarterly.height:
        latest = quarterly["period_end"].max()
        expected["period_end"] = latest
        expected["report_date"] = quarterly.filter(pl.col("period_end") == latest)["available_at"].min()
    else:
        expected["period_end"] = expected["report_date"] = None
    return expected


def test_matches_brute_force_definition():
    facts = random_facts(seed=1, n_tickers=3, n_days=300)
    dates = [D(2020, 1, 1) + timedelta(days=d) for d in range(0, 330, 11)]
    frame = fundamentals_snapshot(facts, dates).frame
    assert frame.height == len(dates) * 3
    for row in frame.to_dicts():
        expected = brute_force(facts, row["date"], row["ticker"])
        for key, value in expected.items():
            assert row[key] == value, (row["date"], row["ticker"], key)


@pytest.mark.parametrize("seed", [2, 3])
def test_truncation_snapshot_on_facts_cut_at_d_equals_full_snapshot_at_d(seed):
    facts = random_facts(seed)
    tickers = sorted(facts["ticker"].unique().to_list())
    dates = [D(2020, 1, 1) + timedelta(days=d) for d in range(0, 420, 3)]
    full = fundamentals_snapshot(facts, dates, tickers).frame
    for cut in dates[::10]:
        truncated = fundamentals_snapshot(facts.filter(pl.col("available_at") <= cut), [cut], tickers).frame
        assert truncated.equals(full.filter(pl.col("date") == cut)), cut
    # a fact published the next day must not show; on its own day it must
    eve, day = D(2020, 5, 31), D(2020, 6, 1)
    future = facts_frame([("T0", D(2020, 3, 31), day, "revenue", 1e9)])
    with_future = fundamentals_snapshot(pl.concat([facts, future]), [eve, day], tickers).frame
    without = fundamentals_snapshot(facts, [eve, day], tickers).frame
    assert with_future.filter(pl.col("date") == eve).equals(without.filter(pl.col("date") == eve))
    assert with_future.filter((pl.col("date") == day) & (pl.col("ticker") == "T0"))["revenue"].item() == 1e9


def test_snapshot_scales_to_a_large_grid():
    rng = np.random.default_rng(0)
    n_tickers, n_days = 200, 1000
    tickers = [f"T{i:03d}" for i in range(n_tickers)]
    days = [D(2015, 1, 1) + timedelta(days=i) for i in range(n_days)]
    quarter_ends = [D(2014, 12, 31) + timedelta(days=91 * q) for q in range(n_days // 91 + 1)]
    quarterly = (
        pl.DataFrame({"ticker": tickers})
        .join(pl.DataFrame({"period_end": quarter_ends}), how="cross")
        .join(pl.DataFrame({"metric": ["revenue", "net_income", "eps_actual"]}), how="cross")
        .with_columns(available_at=pl.col("period_end") + pl.duration(days=40))
    )
    daily = (
        pl.DataFrame({"ticker": tickers})
        .join(pl.DataFrame({"available_at": days}), how="cross")
        .with_columns(period_end=pl.col("available_at"), metric=pl.lit("news_sentiment"))
    )
    facts = pl.concat([quarterly, daily], how="diagonal").with_columns(
        value=pl.Series(rng.normal(size=quarterly.height + daily.height))
    ).select(list(FUNDAMENTAL_FACT_COLUMNS))
    frame = fundamentals_snapshot(facts, days).frame
    assert frame.height == n_tickers * n_days
    last = frame.filter(pl.col("date") == days[-1])
    assert last["news_sentiment"].null_count() == 0
    assert last["period_end"].n_unique() == 1
