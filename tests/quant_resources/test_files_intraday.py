"""Intraday files: tz-aware and naive (= UTC) timestamps, repairs counted, bad files named."""

from __future__ import annotations

from datetime import date

import pytest

from quant_lib.data.intraday import IntradayDataError
from quant_resources.providers.base import NoDataError
from quant_resources.providers.files_intraday import FilesIntraday

ROWS = "open,high,low,close,volume\n"


def test_aware_naive_duplicates_and_out_of_order(tmp_path):
    (tmp_path / "AAPL_5m.csv").write_text(
        "timestamp," + ROWS
        + "2024-07-10T09:35:00-04:00,1,1.2,0.9,1.1,10\n"
        + "2024-07-10T09:30:00-04:00,1,1.2,0.9,1.1,10\n"
        + "2024-07-10T09:30:00-04:00,1,1.2,0.9,1.1,10\n"
    )
    (tmp_path / "MSFT_1h.csv").write_text("Timestamp," + ROWS + "2024-07-10 13:30:00,1,0.9,0.9,1.1,\n")
    src = FilesIntraday(tmp_path)
    bars = src.fetch_ohlcv("AAPL", "5m", date(2024, 7, 10), date(2024, 7, 10))
    assert [str(t) for t in bars["timestamp"]] == ["2024-07-10 13:30:00+00:00", "2024-07-10 13:35:00+00:00"]
    assert src.last_repairs == {"out_of_order": 1, "duplicate": 1}
    naive = src.fetch_ohlcv("MSFT", "1h", date(2024, 7, 10), date(2024, 7, 10))
    assert str(naive["timestamp"][0]) == "2024-07-10 13:30:00+00:00"
    assert src.last_repairs == {"naive_as_utc": 1, "volume_filled": 1, "high_clipped": 1}
    assert naive["high"][0] == 1.1


def test_missing_file_and_bad_columns_are_named(tmp_path):
    src = FilesIntraday(tmp_path)
    with pytest.raises(NoDataError, match="files: AAPL 5m: no file AAPL_5m.csv"):
        src.fetch_ohlcv("AAPL", "5m", date(2024, 7, 10), date(2024, 7, 10))
    (tmp_path / "AAPL_5m.csv").write_text("time," + ROWS + "2024-07-10T09:35:00Z,1,1.2,0.9,1.1,10\n")
    with pytest.raises(IntradayDataError, match=r"AAPL 5m: missing column\(s\) \['timestamp'\]"):
        src.fetch_ohlcv("AAPL", "5m", date(2024, 7, 10), date(2024, 7, 10))
