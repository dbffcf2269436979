"""Triple-barrier labels against a plain per-event loop on random paths and on edge cases; events
(CUSUM, ranked bets), daily volatility, sample weights; bad input."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from quant_lib.labeling import (
    average_uniqueness,
    cusum_events,
    daily_volatility,
    ranked_bet_events,
    sample_weights,
    time_decay,
    triple_barrier,
)

START = dt.date(2021, 1, 4)


def _reference(prices: pl.DataFrame, events: pl.DataFrame, pt_sl, max_holding, use_high_low, vertical_label):
    """The seed's rule written as a plain loop over events and bars."""
    series = {}
    for ticker, frame in prices.sort("date").group_by("ticker"):
        series[ticker[0]] = frame
    rows = []
    for event in events.sort("date", "ticker").iter_rows(named=True):
        frame = series[event["ticker"]]
        dates = frame["date"].to_list()
        close = frame["close"].to_list()
        high = frame["high"].to_list() if use_high_low else close
        low = frame["low"].to_list() if use_high_low else close
        i = dates.index(event["date"])
        t1 = event.get("t1")
        if t1 is not None:
            end = max(k for k, d in enumerate(dates) if d <= t1)
            known = next((k for k, d in enumerate(dates) if d >= t1), None)
        else:
            end = min(i + max_holding, len(dates) - 1)
            known = i + max_holding if i + max_holding < len(dates) else None
            t1 = dates[known] if known is not None else None
        up = pt_sl[0] * event["target"] if pt_sl[0] > 0 else math.inf
        lo = -pt_sl[1] * event["target"] if pt_sl[1] > 0 else -math.inf
        s = event["side"]
        outcome, last = None, 0.0
        for k in range(i + 1, end + 1):
            r = s * (close[k] / close[i] - 1)
            last = r if not math.isnan(r) else last
            fav, adv = (high[k], low[k]) if s > 0 else (low[k], high[k])
            hit_up = r > up or (use_high_low and s * (fav / close[i] - 1) > up)
            hit_lo = r < lo or (use_high_low and s * (adv / close[i] - 1) < lo)
            if hit_lo:
                outcome = (dates[k], "sl", r if r < lo else lo, -1)
                break
            if hit_up:
                outcome = (dates[k], "pt", r if r > up else up, 1)
                break
        if outcome is None and known is not None:
            label = int(np.sign(last)) if vertical_label == "sign" else 0
            outcome = (dates[known], "vertical", last, label)
        touch_date, barrier, ret, label = outcome or (None, None, None, None)
        rows.append({
            "date": event["date"], "ticker": event["ticker"], "side": s, "target": event["target"], "t1": t1,
            "touch_date": touch_date, "barrier": barrier, "ret": ret, "label": label,
            "meta_label": None if label is None else int(label == 1),
        })  # fmt: skip
    return pl.DataFrame(rows, schema_overrides={"side": pl.Int8, "label": pl.Int8, "meta_label": pl.Int8, "t1": pl.Date, "touch_date": pl.Date})


def _random_panel(seed: int, n_tickers: int = 6, n_days: int = 80) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    dates = [START + dt.timedelta(days=d) for d in range(n_days)]
    frames = []
    for t in range(n_tickers):
        length = int(rng.integers(1, n_days)) if t == 0 else n_days
        keep = np.sort(rng.choice(n_days, size=length, replace=False)) if t == 1 else np.arange(n_days - length, n_days)
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n_days)))
        spread = np.abs(rng.normal(0, 0.01, n_days))
        close[rng.random(n_days) < 0.03] = np.nan
        frames.append(pl.DataFrame({
            "date": [dates[k] for k in keep], "ticker": f"T{t}", "close": close[keep],
            "high": close[keep] * (1 + spread[keep]), "low": close[keep] * (1 - spread[keep]),
        }))  # fmt: skip
    return pl.concat(frames)


def _random_events(prices: pl.DataFrame, seed: int, with_t1: bool) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = prices.filter(pl.col("close").is_not_nan())
    rows = rows.filter(pl.Series(rng.random(rows.height) < 0.5))
    events = rows.select(
        "date", "ticker",
        pl.Series("side", rng.choice([-1, 1], rows.height)).cast(pl.Int8),
        pl.Series("target", rng.uniform(0.005, 0.06, rows.height)),
    )  # fmt: skip
    if with_t1:
        offsets = rng.integers(0, 15, events.height)
        t1 = [d + dt.timedelta(days=int(o)) if rng.random() < 0.7 else None for d, o in zip(events["date"], offsets)]
        events = events.with_columns(pl.Series("t1", t1, dtype=pl.Date))
    return events


@pytest.mark.parametrize(
    ("seed", "pt_sl", "max_holding", "use_high_low", "vertical_label", "with_t1"),
    [
        (1, (1.0, 1.0), 10, False, "zero", False),
        (2, (2.0, 0.5), 7, True, "sign", False),
        (3, (0.0, 1.5), 12, False, "sign", True),
        (4, (1.0, 0.0), 5, True, "zero", True),
        (5, (0.0, 0.0), 3, False, "zero", False),
    ],
)
def test_matches_plain_loop_on_random_paths(seed, pt_sl, max_holding, use_high_low, vertical_label, with_t1):
    prices = _random_panel(seed)
    events = _random_events(prices, seed + 100, with_t1)
    got = triple_barrier(prices, events, pt_sl, max_holding, use_high_low, vertical_label)
    expected = _reference(prices, events, pt_sl, max_holding, use_high_low, vertical_label)
    assert got.height == events.height
    assert got.drop("ret").equals(expected.drop("ret"))
    np.testing.assert_allclose(got["ret"].fill_null(np.nan), expected["ret"].fill_null(np.nan).cast(pl.Float64), rtol=1e-12)
    assert got["barrier"].null_count() > 0 or with_t1 is False


def _path(closes, highs=None, lows=None, ticker="AAA"):
    dates = [START + dt.timedelta(days=k) for k in range(len(closes))]
    frame = pl.DataFrame({"date": dates, "ticker": ticker, "close": closes})
    if highs is not None:
        frame = frame.with_columns(pl.Series("high", highs), pl.Series("low", lows))
    return frame


def _event(day=0, side=1, target=0.05, ticker="AAA", **extra):
    return pl.DataFrame({"date": [START + dt.timedelta(days=day)], "ticker": [ticker], "side": [side], "target": [target], **{k: [v] for k, v in extra.items()}})


def test_touch_on_first_bar_and_strict_barriers():
    labels = triple_barrier(_path([100.0, 106.0, 90.0]), _event(), max_holding=2)
    assert labels.select("touch_date", "barrier", "label", "meta_label").row(0) == (START + dt.timedelta(days=1), "pt", 1, 1)
    exact = triple_barrier(_path([100.0, 125.0, 125.0]), _event(target=0.25), max_holding=2)
    assert exact["barrier"][0] == "vertical"  # r == pt * target does not touch: strict
    short = triple_barrier(_path([100.0, 106.0]), _event(side=-1), max_holding=1)
    assert short.select("barrier", "label").row(0) == ("sl", -1)


def test_both_barriers_disabled_gives_vertical_or_unresolved():
    prices = _path([100.0, 150.0, 50.0, 101.0])
    labels = triple_barrier(prices, pl.concat([_event(0), _event(1)]), pt_sl=(0.0, 0.0), max_holding=3, vertical_label="sign")
    assert labels["barrier"].to_list() == ["vertical", None]
    assert labels["label"].to_list() == [1, None]
    assert labels["ret"][0] == pytest.approx(0.01)


def test_gap_through_both_barriers_stop_wins_with_high_low():
    prices = _path([100.0, 100.0], highs=[100.0, 120.0], lows=[100.0, 80.0])
    labels = triple_barrier(prices, _event(), max_holding=1, use_high_low=True)
    assert labels.select("barrier", "ret", "label").row(0) == ("sl", -0.05, -1)
    gap_up = triple_barrier(_path([100.0, 130.0]), _event(), max_holding=1)
    assert labels["touch_date"][0] == gap_up["touch_date"][0]
    assert gap_up.select("barrier", "ret").row(0) == ("pt", pytest.approx(0.30))


def test_end_of_data_and_one_bar_ticker_are_unresolved():
    prices = pl.concat([_path([100.0, 101.0, 102.0]), _path([50.0], ticker="ONE")])
    events = pl.concat([_event(0), _event(0, ticker="ONE"), _event(1, t1=START + dt.timedelta(days=5))], how="diagonal")
    labels = triple_barrier(prices, events, max_holding=5)
    assert labels["touch_date"].null_count() == 3
    assert labels["label"].null_count() == 3
    assert labels["t1"].to_list() == [None, None, START + dt.timedelta(days=5)]


def test_nan_close_touches_nothing_and_vertical_uses_last_finite_close():
    labels = triple_barrier(_path([100.0, 102.0, float("nan")]), _event(target=0.5), max_holding=2, vertical_label="sign")
    assert labels.select("barrier", "label").row(0) == ("vertical", 1)
    assert labels["ret"][0] == pytest.approx(0.02)


def test_t1_between_bars_is_known_at_the_next_bar():
    prices = _path([100.0, 101.0, 102.0, 103.0]).filter(pl.col("date") != START + dt.timedelta(days=2))
    labels = triple_barrier(prices, _event(t1=START + dt.timedelta(days=2), target=0.5))
    assert labels.select("touch_date", "barrier").row(0) == (START + dt.timedelta(days=3), "vertical")
    assert labels["ret"][0] == pytest.approx(0.01)


@pytest.mark.parametrize(
    ("events", "kwargs", "message"),
    [
        (_event(day=9), {}, "have no price"),
        (_event(target=0.0), {}, "non-positive or NaN target"),
        (_event(target=float("nan")), {}, "non-positive or NaN target"),
        (_event(side=0), {}, r"side not in \{-1, \+1\}"),
        (pl.concat([_event(), _event()]), {}, "duplicate events"),
        (_event(t1=START - dt.timedelta(days=1)), {}, "t1 before the event date"),
        (_event(), {"pt_sl": (-1.0, 1.0)}, "non-negative multipliers"),
        (_event(), {"max_holding": 0}, "max_holding"),
        (_event(), {"use_high_low": True}, r"missing column\(s\) \['high', 'low'\]"),
    ],
)
def test_bad_input_names_the_problem(events, kwargs, message):
    with pytest.raises(ValueError, match=message):
        triple_barrier(_path([100.0, 101.0, 102.0]), events, **kwargs)


def test_bad_rows_are_named():
    events = pl.concat([_event(0), _event(1, target=-0.1)])
    with pytest.raises(ValueError, match=r"1 row\(s\).*'row': 1"):
        triple_barrier(_path([100.0, 101.0, 102.0]), events)
    with pytest.raises(ValueError, match="repeat a"):
        triple_barrier(pl.concat([_path([100.0]), _path([100.0])]), _event())


def test_daily_volatility_is_ewm_std_per_ticker_and_point_in_time():
    prices = _random_panel(7, n_tickers=3).filter(pl.col("close").is_not_nan())
    vol = daily_volatility(prices, span=10)
    ticker = prices.filter(pl.col("ticker") == "T2").sort("date")
    expected = ticker.to_pandas()["close"].pct_change().ewm(span=10, min_periods=10).std().to_numpy()
    got = vol.filter(pl.col("ticker") == "T2").sort("date")["volatility"].fill_null(np.nan).to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-9, equal_nan=True)
    cut = prices["date"].sort()[40]
    truncated = daily_volatility(prices.filter(pl.col("date") <= cut), span=10)
    assert truncated.sort("ticker", "date").equals(vol.filter(pl.col("date") <= cut).sort("ticker", "date"))


def test_cusum_matches_afml_loop():
    prices = _random_panel(8, n_tickers=3).filter(pl.col("close").is_not_nan())
    events = cusum_events(prices, threshold=1.5, span=10)
    vol = daily_volatility(prices, span=10)
    expected = []
    for (ticker,), frame in prices.join(vol, on=["date", "ticker"]).sort("date").group_by("ticker"):
        s_pos = s_neg = 0.0
        logs = np.log(frame["close"].to_numpy())
        for k in range(1, frame.height):
            h = 1.5 * (frame["volatility"][k] or np.nan)
            if np.isnan(h):
                continue
            r = logs[k] - logs[k - 1]
            s_pos, s_neg = max(0.0, s_pos + r), min(0.0, s_neg + r)
            if s_neg < -h:
                s_neg = 0.0
                expected.append((frame["date"][k], ticker, -1))
            elif s_pos > h:
                s_pos = 0.0
                expected.append((frame["date"][k], ticker, 1))
    assert sorted(expected) == sorted(events.select("date", "ticker", "side").rows())
    assert len(expected) > 10


def test_ranked_bet_events_top_n_on_rebalance_days():
    dates = [START + dt.timedelta(days=d) for d in range(4)]
    rankings = pl.DataFrame({"date": [d for d in dates for _ in range(3)], "ticker": ["A", "B", "C"] * 4, "rank": [1, 2, 3] * 4, "score": [0.9, 0.5, 0.1] * 4})
    volatility = rankings.select("date", "ticker", pl.when(pl.col("ticker") == "B").then(None).otherwise(0.01).alias("volatility"))
    events = ranked_bet_events(rankings, volatility, top_n=2, rebalance_every=2)
    assert events.select("date", "ticker", "side", "rank").rows() == [(dates[0], "A", 1, 1), (dates[2], "A", 1, 1)]


def test_average_uniqueness_known_answer():
    # Two labels on one ticker over rows 0..4: (0, 2] and (1, 4]; concurrency 1, 2, 1, 1 on rows 1..4.
    uniqueness = average_uniqueness(np.array([0, 1]), np.array([2, 4]), 5)
    np.testing.assert_allclose(uniqueness, [(1 + 0.5) / 2, (0.5 + 1 + 1) / 3])
    np.testing.assert_allclose(time_decay(np.array([1.0, 1.0]), oldest_weight=1.0), [1.0, 1.0])
    np.testing.assert_allclose(time_decay(np.array([1.0, 1.0, 2.0]), oldest_weight=0.0), [0.25, 0.5, 1.0])
    np.testing.assert_allclose(time_decay(np.array([1.0, 1.0, 2.0]), oldest_weight=-0.5), [0.0, 0.0, 1.0])


def test_sample_weights_on_labels_mean_one_and_overlap_lowers_weight():
    prices = _path(list(100 + np.arange(10.0)))
    labels = pl.concat([_event(0, target=1.0), _event(1, target=1.0), _event(7, target=1.0)])
    labelled = triple_barrier(prices, labels, max_holding=2)
    weights = sample_weights(labelled, prices)
    assert weights["sample_weight"].mean() == pytest.approx(1.0)
    assert weights["uniqueness"].to_list() == pytest.approx([0.75, 0.75, 1.0])
