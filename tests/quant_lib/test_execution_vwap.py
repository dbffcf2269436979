"""VWAP schedule (exact integer split) and square-root impact."""

from __future__ import annotations

from datetime import time

import numpy as np
import polars as pl
import pytest

from quant_lib.execution import (
    DEFAULT_VOLUME_PROFILE,
    largest_remainder_allocation,
    square_root_impact_bps,
    vwap_schedule,
)


@pytest.mark.parametrize("total", [0, 1, 7, 12, 13, 14, 999, 1001, 123_457, 10_000_019])
def test_schedule_sums_exactly_and_is_close_to_the_profile(total):
    schedule = vwap_schedule(total)
    shares = schedule["shares"].to_numpy()
    assert shares.sum() == total
    assert (shares >= 0).all()
    assert np.abs(shares - total * DEFAULT_VOLUME_PROFILE).max() < 1.0


def test_schedule_layout_and_times():
    schedule = vwap_schedule(1_000)
    assert schedule.schema == pl.Schema({"slice_start": pl.Time, "shares": pl.Int64, "pct": pl.Float64})
    assert schedule.height == 13
    assert schedule["slice_start"][0] == time(9, 30)
    assert schedule["slice_start"][-1] == time(15, 30)
    assert schedule["shares"].to_list() == [150, 100, 80, 60, 50, 50, 50, 50, 60, 70, 80, 90, 110]
    assert schedule["pct"].sum() == pytest.approx(1.0)


def test_sell_orders_keep_their_sign():
    schedule = vwap_schedule(-1_001)
    assert schedule["shares"].sum() == -1_001
    assert (schedule["shares"] <= 0).all()


def test_custom_profile_and_largest_remainder():
    schedule = vwap_schedule(10, volume_profile=np.array([1.0, 1.0, 1.0]), start="10:00", bin_minutes=60)
    # 10/3 = 3.33 each: one extra share goes to the first (ties go to the earlier bin).
    assert schedule["shares"].to_list() == [4, 3, 3]
    assert schedule["slice_start"].to_list() == [time(10), time(11), time(12)]
    np.testing.assert_array_equal(largest_remainder_allocation(7, np.array([0.5, 0.3, 0.2])), [4, 2, 1])


def test_bad_profile_and_sizes():
    with pytest.raises(ValueError, match="volume_profile"):
        vwap_schedule(100, volume_profile=np.array([0.5, -0.1]))
    with pytest.raises(ValueError, match="whole number"):
        vwap_schedule(10.5)


def test_square_root_impact():
    # 1% participation at 2% daily vol: 0.02 * sqrt(0.01) * 1e4 = 20 bps.
    assert square_root_impact_bps(10_000, 1_000_000, 0.02) == pytest.approx(20.0)
    assert square_root_impact_bps(-40_000, 1_000_000, 0.02, gamma=0.5) == pytest.approx(20.0)
    np.testing.assert_allclose(
        square_root_impact_bps(np.array([0, 2_500, 10_000]), np.array([1e6, 1e6, 1e6]), 0.03), [0.0, 15.0, 30.0]
    )
    with pytest.raises(ValueError, match="daily_volume"):
        square_root_impact_bps(100, 0, 0.02)
