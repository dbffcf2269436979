"""Price-based factors: volatility-scaled momentum, betting against beta, idiosyncratic volatility.

All are rolling window expressions over each ticker's trading days (`.over("ticker")`); a window
of `n` days uses only rows up to and including the row's date. Factor columns are oriented so
that higher means a higher expected return (BAB and IVOL are negated characteristics).
"""

from __future__ import annotations

import polars as pl

from quant_lib.factors._panel import SQRT_YEAR, build_panel, finite, has_ticker, output_frame, with_finite


def apply_volatility_scaled_momentum(
    lf: pl.LazyFrame,
    *,
    lookback: int = 252,
    skip: int = 21,
    vol_window: int = 60,
    vol_floor: float = 0.05,
) -> pl.LazyFrame:
    """Add `vsm` to a panel with `adj_close` and `ret` (see `volatility_scaled_momentum`)."""
    momentum = pl.col("adj_close").shift(skip) / pl.col("adj_close").shift(lookback) - 1.0
    vol = pl.col("ret").rolling_std(vol_window, min_samples=vol_window).over("ticker") * SQRT_YEAR
    return with_finite(lf, vsm=momentum.over("ticker") / vol.clip(lower_bound=vol_floor))


def volatility_scaled_momentum(
    prices: pl.DataFrame,
    *,
    lookback: int = 252,
    skip: int = 21,
    vol_window: int = 60,
    vol_floor: float = 0.05,
) -> pl.DataFrame:
    """Volatility-scaled 12-1 momentum (Moskowitz, Ooi & Pedersen 2012, "Time series momentum").

    vsm_t = (P_{t-skip} / P_{t-lookback} - 1) / max(sigma_t, vol_floor), with P = adj_close,
    sigma_t = std of the last `vol_window` daily returns * sqrt(252) (full window required).
    Defaults: 252-day return skipping the last 21 days, 60-day vol, 5% floor (seed section 4.2.2).
    Returns (date, ticker, vsm); null until `lookback` rows of history exist.
    """
    panel = build_panel(prices, None, None)
    out = apply_volatility_scaled_momentum(
        panel.lazy(), lookback=lookback, skip=skip, vol_window=vol_window, vol_floor=vol_floor
    )
    return output_frame(out, ["date", "ticker", "vsm"])


def _with_pair_moments(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Add `_x`, `_y` (ret and bench_ret where both are finite, else null) and their products."""
    if "_xy" in lf.collect_schema().names():
        return lf
    valid = pl.col("ret").is_finite() & pl.col("bench_ret").is_finite()
    lf = lf.with_columns(
        _x=pl.when(valid).then(pl.col("ret")),
        _y=pl.when(valid).then(pl.col("bench_ret")),
        _n=valid.fill_null(False).cast(pl.Float64),
    )
    return lf.with_columns(_xy=pl.col("_x") * pl.col("_y"), _xx=pl.col("_x") ** 2, _yy=pl.col("_y") ** 2)


def apply_beta(
    lf: pl.LazyFrame,
    *,
    window: int = 252,
    min_samples: int = 126,
    shrink: float = 0.6,
) -> pl.LazyFrame:
    """Add `beta_raw`, `beta` (shrunk) and `bab` to a panel with `ret` and `bench_ret`."""
    lf = _with_pair_moments(lf)
    means = lf.with_columns(
        [pl.col(c).rolling_mean(window, min_samples=min_samples).over("ticker").alias(f"_b{c}") for c in
         ("_x", "_y", "_xy", "_yy")]
    )
    cov = pl.col("_b_xy") - pl.col("_b_x") * pl.col("_b_y")
    var_b = (pl.col("_b_yy") - pl.col("_b_y") ** 2).clip(lower_bound=0.0)
    return (
        means.with_columns(beta_raw=finite(cov / var_b))
        .with_columns(beta=shrink * pl.col("beta_raw") + (1.0 - shrink))
        .with_columns(bab=-pl.col("beta"))
        .drop("_b_x", "_b_y", "_b_xy", "_b_yy")
    )


def betting_against_beta(
    prices: pl.DataFrame,
    benchmark_ticker: str = "SPY",
    *,
    window: int = 252,
    min_samples: int = 126,
    shrink: float = 0.6,
) -> pl.DataFrame:
    """Betting against beta (Frazzini & Pedersen 2014, "Betting against beta").

    beta_raw_t = Cov(r_i, r_m) / Var(r_m) over the last `window` daily returns where both exist
    (at least `min_samples`, else null); beta_t = shrink * beta_raw_t + (1 - shrink) * 1, the
    Vasicek-style shrinkage toward 1 with F&P's weight 0.6; bab_t = -beta_t.
    Returns (date, ticker, beta_raw, beta, bab) for every input row (the benchmark's beta is 1).
    """
    _require_benchmark(prices, benchmark_ticker)
    panel = build_panel(prices, None, benchmark_ticker)
    out = apply_beta(panel.lazy(), window=window, min_samples=min_samples, shrink=shrink)
    return output_frame(out, ["date", "ticker", "beta_raw", "beta", "bab"])


def apply_idiosyncratic_volatility(
    lf: pl.LazyFrame,
    *,
    window: int = 60,
    min_samples: int = 40,
) -> pl.LazyFrame:
    """Add `idio_vol` and `ivol` (= -idio_vol) to a panel with `ret` and `bench_ret`."""
    lf = _with_pair_moments(lf)
    lf = lf.with_columns(
        [pl.col(c).rolling_mean(window, min_samples=min_samples).over("ticker").alias(f"_i{c}")
         for c in ("_x", "_y", "_xy", "_xx", "_yy")]
        + [pl.col("_n").rolling_sum(window, min_samples=1).over("ticker").alias("_i_n")]
    )
    n = pl.col("_i_n")
    var_x = pl.col("_i_xx") - pl.col("_i_x") ** 2
    var_y = (pl.col("_i_yy") - pl.col("_i_y") ** 2).clip(lower_bound=0.0)
    cov = pl.col("_i_xy") - pl.col("_i_x") * pl.col("_i_y")
    resid_ss = (n * (var_x - cov**2 / var_y)).clip(lower_bound=0.0)
    idio = (resid_ss / (n - 2.0)).sqrt() * SQRT_YEAR
    return (
        lf.with_columns(idio_vol=finite(idio))
        .with_columns(ivol=-pl.col("idio_vol"))
        .drop("_i_x", "_i_y", "_i_xy", "_i_xx", "_i_yy", "_i_n")
    )


def idiosyncratic_volatility(
    prices: pl.DataFrame,
    benchmark_ticker: str = "SPY",
    *,
    window: int = 60,
    min_samples: int = 40,
) -> pl.DataFrame:
    """Idiosyncratic volatility (Ang, Hodrick, Xing & Zhang 2006, "The cross-section of volatility
    and expected returns"), single-factor version against the benchmark.

    Over the last `window` daily returns (at least `min_samples`): OLS r_i = a + b r_m + e;
    idio_vol = sqrt(SSR / (n - 2)) * sqrt(252), SSR = n (Var(r_i) - Cov(r_i, r_m)^2 / Var(r_m))
    with population moments. Low idiosyncratic volatility earns more, so ivol = -idio_vol.
    Returns (date, ticker, idio_vol, ivol).
    """
    _require_benchmark(prices, benchmark_ticker)
    panel = build_panel(prices, None, benchmark_ticker)
    out = apply_idiosyncratic_volatility(panel.lazy(), window=window, min_samples=min_samples)
    return output_frame(out, ["date", "ticker", "idio_vol", "ivol"])


def _require_benchmark(prices: pl.DataFrame, benchmark_ticker: str) -> None:
    if "ticker" in prices.columns and not has_ticker(prices, benchmark_ticker):
        raise ValueError(f"prices has no rows for the benchmark ticker {benchmark_ticker!r}")
