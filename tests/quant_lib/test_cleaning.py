"""OHLCV cleaning: one test per bad-input row of seed 004 §8.1, spikes by context, accounting."""

from __future__ import annotations

import json
from datetime import date, timedelta

import polars as pl
import pytest

from quant_lib.data.cleaning import ValidationReport, check_no_future_dates, clean_ohlcv, validate_prices
from quant_lib.data.schemas import PRICE_COLUMNS, PricesSchema

NAN = float("nan")


def bars(closes: list[float], ticker: str = "AAA", start: date = date(2024, 1, 1), **overrides) -> pl.DataFrame:
    """A clean daily panel for one ticker: open = close, high = close + 1, low = close - 1."""
    n = len(closes)
    data = {
        "date": [start + timedelta(days=i) for i in range(n)],
        "ticker": [ticker] * n,
        "open": list(closes),
        "high": [c + 1 for c in closes],
        "low": [c - 1 for c in closes],
        "close": list(closes),
        "adj_close": list(closes),
        "volume": [1000.0] * n,
    }
    data.update(overrides)
    return pl.DataFrame(data, schema=PRICE_COLUMNS)


def test_clean_input_passes_through_unchanged():
    raw = pl.concat([bars([10, 11, 12], "BBB"), bars([20, 21, 22], "AAA")])
    out, report = clean_ohlcv(raw)
    assert out.equals(raw.sort("date", "ticker"))
    assert report.rows_in == report.rows_out == 6
    assert report.drop_rate == 0.0
    assert sum(report.dropped_by_reason.values()) == sum(report.repaired_by_reason.values()) == 0
    assert report.flagged_rows.is_empty()


def test_empty_frame_returns_empty_canonical_frame():
    out, report = clean_ohlcv(pl.DataFrame(schema=PRICE_COLUMNS))
    assert out.is_empty() and out.schema == pl.Schema(PRICE_COLUMNS)
    assert report.rows_in == 0 and report.rows_out == 0 and report.drop_rate == 0.0


def test_duplicate_timestamps_keep_first_occurrence():
    raw = bars([10, 11, 12])
    duplicate = raw.slice(1, 1).with_columns(pl.col("close") * 0 + 11.5, pl.col("adj_close") * 0 + 11.5)
    out, report = clean_ohlcv(pl.concat([raw, duplicate]))
    assert out.height == 3
    assert out.filter(pl.col("date") == date(2024, 1, 2))["close"].item() == 11.0
    assert report.dropped_by_reason["duplicate"] == 1
    assert report.flagged_rows.filter(pl.col("reason") == "duplicate")["date"].to_list() == [date(2024, 1, 2)]


@pytest.mark.parametrize("column", ["open", "high", "low", "close"])
@pytest.mark.parametrize("bad", [NAN, None, float("inf")])
def test_nan_in_ohlc_drops_the_row(column, bad):
    values = [10.0, 11.0, 12.0, 13.0]
    raw = bars(values)
    raw = raw.with_columns(pl.when(pl.col("date") == date(2024, 1, 3)).then(bad).otherwise(pl.col(column)).alias(column))
    out, report = clean_ohlcv(raw)
    assert date(2024, 1, 3) not in out["date"].to_list()
    assert out.height == 3
    assert report.dropped_by_reason["missing_ohlc"] == 1
    assert out.select(pl.all().is_null().any()).row(0) == (False,) * 8


def test_nan_volume_filled_with_zero():
    raw = bars([10, 11, 12], volume=[100.0, NAN, None])
    out, report = clean_ohlcv(raw)
    assert out["volume"].to_list() == [100.0, 0.0, 0.0]
    assert report.repaired_by_reason["volume_filled"] == 2
    assert report.rows_out == 3


def test_high_below_max_open_close_clipped_up_and_low_clipped_down():
    raw = bars([10, 11, 12], open=[10.0, 11.5, 12.0], high=[9.0, 12.0, 13.0], low=[9.0, 11.8, 12.5])
    out, report = clean_ohlcv(raw)
    assert out["high"].to_list() == [10.0, 12.0, 13.0]
    assert out["low"].to_list() == [9.0, 11.0, 12.0]
    assert report.repaired_by_reason["high_clipped"] == 1
    assert report.repaired_by_reason["low_clipped"] == 2
    PricesSchema.validate(out)


def test_non_positive_prices_and_negative_volume_dropped():
    raw = bars([10, 11, 12, 13], low=[9.0, 0.0, 11.0, 12.0], volume=[1.0, 1.0, -5.0, 1.0])
    out, report = clean_ohlcv(raw)
    assert out["date"].to_list() == [date(2024, 1, 1), date(2024, 1, 4)]
    assert report.dropped_by_reason["non_positive_price"] == 1
    assert report.dropped_by_reason["negative_volume"] == 1


def test_missing_adj_close_filled_from_close():
    raw = bars([10, 11, 12], adj_close=[9.5, None, NAN])
    out, report = clean_ohlcv(raw)
    assert out["adj_close"].to_list() == [9.5, 11.0, 12.0]
    assert report.repaired_by_reason["adj_close_filled"] == 2

    no_column, report = clean_ohlcv(raw.drop("adj_close"))
    assert no_column["adj_close"].to_list() == [10.0, 11.0, 12.0]
    assert report.repaired_by_reason["adj_close_filled"] == 3


def test_missing_columns_error_names_them():
    with pytest.raises(ValueError, match=r"\['high', 'volume'\]"):
        clean_ohlcv(bars([10, 11]).drop("high", "volume"))


def test_wrong_dtypes_are_coerced_or_rejected():
    raw = bars([10, 11]).with_columns(
        pl.col("date").cast(pl.String), pl.col("close").cast(pl.String), pl.col("volume").cast(pl.Int64)
    )
    out, _ = clean_ohlcv(raw)
    assert out.schema == pl.Schema(PRICE_COLUMNS)
    assert out["close"].to_list() == [10.0, 11.0]

    datetimes = bars([10, 11]).with_columns(pl.col("date").cast(pl.Datetime("us")) + pl.duration(hours=16))
    assert clean_ohlcv(datetimes)[0]["date"].to_list() == [date(2024, 1, 1), date(2024, 1, 2)]

    with pytest.raises(ValueError, match="column 'close'.*'ten'"):
        clean_ohlcv(raw.with_columns(pl.lit("ten").alias("close")))
    with pytest.raises(ValueError, match="column 'date'"):
        clean_ohlcv(raw.with_columns(pl.lit("01/02/2024").alias("date")))


SPIKE_PATH = [100.0, 101.0, 250.0, 102.0, 103.0, 104.0]
MOVE_PATH = [100.0, 101.0, 250.0, 251.0, 252.0, 253.0]


def test_spike_in_daily_context_is_kept_and_warned():
    out, report = clean_ohlcv(bars(SPIKE_PATH), context="daily")
    assert out.height == 6
    assert report.warnings_by_reason["potential_spike"] == 2  # the jump and the fall back
    assert report.dropped_by_reason["confirmed_spike"] == 0


def test_reverting_spike_in_backfill_is_confirmed_and_dropped():
    out, report = clean_ohlcv(bars(SPIKE_PATH), context="backfill")
    assert 250.0 not in out["close"].to_list()
    assert out.height == 5
    assert report.dropped_by_reason["confirmed_spike"] == 1
    assert report.warnings_by_reason == {"potential_spike": 0, "persistent_move": 0}
    flagged = report.flagged_rows.filter(pl.col("reason") == "confirmed_spike")
    assert flagged.select("date", "action").row(0) == (date(2024, 1, 3), "dropped")


def test_persistent_move_in_backfill_is_kept_and_warned():
    out, report = clean_ohlcv(bars(MOVE_PATH), context="backfill")
    assert out.height == 6
    assert report.warnings_by_reason["persistent_move"] == 1
    assert report.dropped_by_reason["confirmed_spike"] == 0


def test_downward_spike_and_threshold():
    crash = [100.0, 100.0, 40.0, 99.0, 100.0]
    assert clean_ohlcv(bars(crash))[1].dropped_by_reason["confirmed_spike"] == 1
    assert clean_ohlcv(bars(crash), spike_threshold=0.7)[1].dropped_by_reason["confirmed_spike"] == 0


def test_spikes_are_classified_per_ticker_not_across_tickers():
    # AAA ends at 10, BBB starts at 1000: interleaved rows must not be compared across tickers.
    raw = pl.concat([bars([10.0] * 4, "AAA"), bars([1000.0] * 4, "BBB"), bars(SPIKE_PATH, "CCC")])
    out, report = clean_ohlcv(raw.sample(fraction=1.0, shuffle=True, seed=3))
    assert report.dropped_by_reason["confirmed_spike"] == 1
    assert report.flagged_rows.filter(pl.col("reason") == "confirmed_spike")["ticker"].to_list() == ["CCC"]
    assert out.height == 13
    assert out.select("date", "ticker").equals(out.select("date", "ticker").sort("date", "ticker"))


def test_drop_rate_accounting_sums_to_rows_removed():
    raw = pl.concat([
        bars([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]),
        bars([10.0], start=date(2024, 1, 2)),  # duplicate of 2024-01-02
        bars([NAN], start=date(2024, 1, 20)),
        bars([-1.0], start=date(2024, 1, 21)),
    ])
    out, report = clean_ohlcv(raw)
    assert report.rows_in == 13 and report.rows_out == 10
    assert sum(report.dropped_by_reason.values()) == report.rows_in - report.rows_out == report.rows_dropped
    assert report.drop_rate == pytest.approx(3 / 13)
    assert not report.is_acceptable(0.10) and report.is_acceptable(0.25)


def test_row_with_several_problems_is_dropped_once():
    raw = bars([10, 11], open=[NAN, 11.0], low=[-1.0, 10.0], volume=[-3.0, 1.0])
    _, report = clean_ohlcv(raw)
    assert report.dropped_by_reason["missing_ohlc"] == 1
    assert report.dropped_by_reason["non_positive_price"] == report.dropped_by_reason["negative_volume"] == 0


def test_report_metadata_is_json_and_summary_names_reasons():
    raw = pl.concat([bars([10, 11, 12], high=[9.0, 12.0, 13.0]), bars([NAN], start=date(2024, 1, 9))])
    _, report = clean_ohlcv(raw)
    meta = report.to_metadata()
    assert json.loads(json.dumps(meta))["dropped_by_reason"]["missing_ohlc"] == 1
    assert meta["flagged_rows_sample"][0]["date"] == "2024-01-01"
    assert "missing_ohlc=1" in report.summary() and "high_clipped=1" in report.summary()
    assert isinstance(report, ValidationReport)
    with pytest.raises(AttributeError):
        report.rows_in = 0  # frozen


def test_flagged_rows_are_capped():
    raw = bars([10.0] * 50, volume=[NAN] * 50)
    _, report = clean_ohlcv(raw, max_flagged_rows=7)
    assert report.flagged_rows.height == 7
    assert report.repaired_by_reason["volume_filled"] == 50


def test_bad_context_rejected():
    with pytest.raises(ValueError, match="context"):
        clean_ohlcv(bars([1.0]), context="live")  # type: ignore[arg-type]


def test_cleaning_is_vectorised_on_a_large_panel():
    n_days, n_tickers = 500, 200
    days = pl.date_range(date(2020, 1, 1), date(2020, 1, 1) + timedelta(days=n_days - 1), eager=True)
    panel = (
        pl.DataFrame({"date": days})
        .join(pl.DataFrame({"ticker": [f"T{i:03d}" for i in range(n_tickers)]}), how="cross")
        .with_columns(
            close=100.0 + (pl.int_range(pl.len()) % 7).cast(pl.Float64),
        )
        .with_columns(
            open=pl.col("close"), high=pl.col("close") + 1, low=pl.col("close") - 1,
            adj_close=pl.col("close"), volume=pl.lit(1e6),
        )
    )
    out, report = clean_ohlcv(panel.select(list(PRICE_COLUMNS)))
    assert out.height == n_days * n_tickers
    assert report.drop_rate == 0.0


def test_validate_prices_names_problems_without_raising():
    good = bars([10, 11, 12])
    assert validate_prices(good) == []
    bad = pl.concat([good, good.slice(0, 1)]).with_columns(
        pl.when(pl.col("date") == date(2024, 1, 2)).then(5.0).otherwise(pl.col("high")).alias("high")
    )
    problems = validate_prices(bad)
    text = "\n".join(problems)
    assert "duplicate" in text
    assert "high < max(open, close)" in text and "2024, 1, 2" in text
    assert validate_prices(good.drop("volume")) == ["missing columns ['volume']"]
    assert "wrong dtypes" in validate_prices(good.with_columns(pl.col("close").cast(pl.Float32)))[0]


def test_check_no_future_dates():
    frame = bars([10, 11, 12])
    assert check_no_future_dates(frame, date(2024, 1, 3)) == []
    problems = check_no_future_dates(frame, date(2024, 1, 2))
    assert len(problems) == 1 and "1 rows dated after 2024-01-02" in problems[0]
    assert check_no_future_dates(frame.rename({"date": "day"}), date(2024, 1, 2)) == ["missing column 'date'"]
