"""Market-data providers: `simulated` (offline default), `files` (CSV/Parquet) and `yfinance`."""

from quant_resources.providers.base import MarketDataProvider, NoDataError, ProviderError

__all__ = ["MarketDataProvider", "NoDataError", "ProviderError"]
