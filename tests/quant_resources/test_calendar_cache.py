"""The on-disk session-table cache gives the same sessions as exchange-calendars and survives a
corrupt file."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from quant_lib.data import calendar
from quant_resources.calendar_cache import _cache_path, load_session_table


@pytest.fixture(autouse=True)
def _fresh_tables():
    calendar._registered_tables.clear()
    calendar._session_table.cache_clear()
    yield
    calendar._registered_tables.clear()
    calendar._session_table.cache_clear()


def test_cache_round_trip_and_corrupt_file(tmp_path):
    computed = [a.copy() for a in calendar.session_table("XNYS")]
    load_session_table("XNYS", tmp_path)
    path = _cache_path("XNYS", tmp_path)
    assert path.exists()
    calendar._registered_tables.clear()
    calendar._session_table.cache_clear()
    load_session_table("XNYS", tmp_path)
    assert "XNYS" in calendar._registered_tables
    for cached, fresh in zip(calendar.session_table("XNYS"), computed):
        np.testing.assert_array_equal(cached, fresh)
    assert not calendar.is_trading_day(date(2024, 7, 4), "XNYS")
    path.write_bytes(b"not an npz file")
    calendar._registered_tables.clear()
    load_session_table("XNYS", tmp_path)
    np.testing.assert_array_equal(calendar.session_table("XNYS")[0], computed[0])
    assert np.load(path)["days"].shape == computed[0].shape


def test_unknown_calendar_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown market calendar 'XXXX'"):
        load_session_table("XXXX", tmp_path)
