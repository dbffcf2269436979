"""`quant`: download market data, train the forecasters, backtest and run the live loop.

Heavy libraries (dagster, torch, plotly, alpaca) are imported inside the commands, so
`quant --help` answers at once. Logs go to the console and to a rotating file
`warehouse/logs/quant.log` in one format.
"""

from __future__ import annotations

import logging
import sys
from datetime import date
from logging.handlers import RotatingFileHandler
from pathlib import Path

import click

LOG_FORMAT = "%(asctime)s | %(levelname)-7s | %(name)s | %(message)s"
ASSETS_HELP = "Comma-separated symbols, e.g. AAPL,BTC-USD."


def _warehouse() -> Path:
    from quant_resources.settings import get_settings

    return Path(get_settings().warehouse_dir)


def setup_logging(level: str = "INFO") -> Path:
    """Console + rotating file handler (5 x 10 MB) under warehouse/logs, one format."""
    log_dir = _warehouse() / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in list(root.handlers):
        if getattr(handler, "_quant", False):
            root.removeHandler(handler)
    formatter = logging.Formatter(LOG_FORMAT)
    for handler in (logging.StreamHandler(sys.stderr),
                    RotatingFileHandler(log_dir / "quant.log", maxBytes=10_000_000, backupCount=5)):
        handler.setFormatter(formatter)
        handler._quant = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    return log_dir / "quant.log"


def _symbols(text: str) -> list[str]:
    symbols = [s.strip() for s in text.split(",") if s.strip()]
    if not symbols:
        raise click.BadParameter("give at least one symbol")
    return symbols


def _progress(total: int, label: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True)
    task = progress.add_task(label, total=total)
    return progress, (lambda: progress.advance(task))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", default="INFO", show_default=True, help="DEBUG, INFO, WARNING or ERROR.")
@click.pass_context
def main(ctx: click.Context, log_level: str) -> None:
    """quant-platform: research, training and trading from the command line."""
    ctx.obj = {"log_file": setup_logging(log_level)}


@main.command()
@click.option("--assets", default="AAPL", show_default=True, help=ASSETS_HELP)
@click.option("--interval", default="1d", show_default=True,
              help="1d: the market assets. 1m, 5m, 15m or 1h: the intraday_bars asset for ASSETS from "
                   "INTRADAY_PROVIDER (limits such as Yahoo's 60 days of 5m bars are checked first).")
@click.option("--days", default=365, show_default=True, type=click.IntRange(1), help="Trading days to download, ending today.")
def download(assets: str, interval: str, days: int) -> None:
    """Materialize the market assets (universe, prices, fundamentals) for the last DAYS trading days
    from the configured provider (MARKET_DATA_PROVIDER; simulated by default); with an intraday
    --interval, the intraday_bars asset for ASSETS (the partitions keep the symbols and intervals
    they already hold)."""
    if interval != "1d":
        from quant_assets.download import INTRADAY_INTERVALS, DownloadError, run_download

        if interval not in INTRADAY_INTERVALS:
            raise click.BadParameter(f"{interval!r}: use 1d or one of {', '.join(INTRADAY_INTERVALS)}", param_hint="--interval")
        try:
            return run_download(_symbols(assets), interval, days, click.echo)
        except DownloadError as error:
            raise click.ClickException(str(error)) from error
    from quant_assets.run_daily import prepare_dagster_home

    prepare_dagster_home()
    from dagster import DagsterInstance

    from quant_assets.definitions import defs
    from quant_assets.reporting import backfill_missing
    from quant_lib.data.calendar import latest_trading_day, shift_trading_days
    from quant_resources.run_recovery import recover_and_report

    job = defs.resolve_job_def("daily_job")
    graph = defs.resolve_asset_graph()
    keys = [k for k in job.asset_layer.executable_asset_keys if graph.get(k).group_name == "market"]
    last = latest_trading_day(date.today())
    first = shift_trading_days(last, -(days - 1))
    click.echo(f"symbols requested: {', '.join(_symbols(assets))} (the provider's universe is downloaded)")
    instance = DagsterInstance.get()
    recover_and_report(instance)
    results = backfill_missing(job, instance, [("market data", first, last, keys)], total_steps=1)
    if not all(r.success for r in results):
        raise click.ClickException("download failed; see the log")
    click.echo(f"market data {first} .. {last} in the warehouse")


@main.command()
@click.option("--model", "model_name", default="all", show_default=True,
              type=click.Choice(["all", "transformer", "itransformer", "lstm", "momentum", "ppo"]),
              help="A net of the live loop (partition live_<net>), the PPO allocator (ppo), or all five.")
@click.option("--assets", default="AAPL", show_default=True, help=ASSETS_HELP)
@click.option("--interval", default="5m", show_default=True, help="Bar interval: 1d, or 1m/5m/15m/1h.")
@click.option("--epochs", default=20, show_default=True, type=click.IntRange(1),
              help="Maximum epochs of the nets (early stopping on validation); PPO runs EPOCHS x 256 env steps.")
@click.option("--source", default="replay", show_default=True, type=click.Choice(["replay", "warehouse"]),
              help="replay: the seeded simulated tape `quant live` / `quant backtest` replay. warehouse: the bars "
                   "`quant download` stored (prices for 1d, intraday_bars otherwise).")
@click.option("--bars", default=3_000, show_default=True, type=click.IntRange(200), help="replay: bars per symbol.")
@click.option("--seq-len", default=30, show_default=True, type=click.IntRange(2), help="Window length of the nets.")
@click.option("--week", default=None, type=click.DateTime(["%Y-%m-%d"]),
              help="Training week (its Saturday start, or any day in it). Default: the week of the last bar.")
@click.option("--seed", default=7, show_default=True)
def train(model_name: str, assets: str, interval: str, epochs: int, source: str, bars: int, seq_len: int, week, seed: int) -> None:
    """Train by materializing the `model_checkpoints` asset: one (week, model) partition per model,
    in one Dagster run that fans the training out through the `compute` resource. Each model is
    tested out of sample on the last 20% of the bars, stored in the model store
    (warehouse/models/<model>/<week>/) and registered (live_<net>, ml_ppo); the `champion` alias
    moves only when the promotion gate passes. `quant live` and `quant backtest` load the champion
    (else the latest version, with a warning)."""
    from quant_assets.train_command import TrainRequest, run_training

    request = TrainRequest(model_name, _symbols(assets), interval, epochs, source, bars, seq_len, seed,
                           week.date() if week else None)
    from rich.console import Console

    with Console(stderr=True).status(f"training {model_name} on {assets} ({interval}, {source}) ..."):
        rows = run_training(request)
    for row in rows:
        verdict = "champion" if row["promoted"] else "not promoted"
        click.echo(f"{row['model']:18s} v{row['version']:<3d} {verdict:12s} oos loss {row['oos_loss']:.6g} vs naive "
                   f"{row['naive_loss']:.6g} | {row['reason']}")


@main.command()
@click.option("--strategy", default="ensemble", show_default=True, type=click.Choice(["ensemble", "ml", "ranking"]))
@click.option("--assets", default="AAPL", show_default=True, help=ASSETS_HELP)
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default=None, help="First day (default 2025-01-02).")
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Last day (with --start: the tape covers start..end; else --bars bars).")
@click.option("--capital", default=100_000.0, show_default=True, type=click.FloatRange(min=1.0))
@click.option("--interval", default="5m", show_default=True)
@click.option("--bars", default=2_000, show_default=True, type=click.IntRange(50), help="Bars of the simulated tape.")
@click.option("--max-drawdown", default=0.15, show_default=True, type=click.FloatRange(0, 1, min_open=True))
@click.option("--daily-loss-limit", default=0.03, show_default=True, type=click.FloatRange(0, 1, min_open=True))
@click.option("--seed", default=7, show_default=True)
def backtest(strategy: str, assets: str, start, end, capital: float, interval: str, bars: int,
             max_drawdown: float, daily_loss_limit: float, seed: int) -> None:
    """Backtest a strategy and write the six-panel HTML dashboard under warehouse/reports/.

    ensemble / ml: the trained nets replayed bar by bar through the live loop with the paper
    broker (the same code path as `quant live`). ranking: the factor book (materializes the
    weekly `backtests` asset, as `make backtest`)."""
    if strategy == "ranking":
        from quant_assets.run_backtest import main as run_ranking_backtest

        raise SystemExit(run_ranking_backtest([]))
    import polars as pl

    from quant_assets.live_runner import LiveOptions, bar_groups, replay_backtest, replay_bars

    tape = replay_bars(_symbols(assets), interval, bars, seed, start.date() if start else None,
                       end.date() if end else None)
    if end is not None:
        tape = tape.filter(pl.col("timestamp").dt.date() <= end.date())
    options = LiveOptions(strategy=strategy, assets=_symbols(assets), interval=interval, capital=capital, seed=seed,
                          retrain=False, checkpoint_interval=0, max_drawdown=max_drawdown,
                          daily_loss_limit=daily_loss_limit, run_name="backtest")
    groups = bar_groups(tape)
    progress, advance = _progress(len(groups), "backtest")
    with progress:
        shown, path = replay_backtest(options, groups, _warehouse(), advance)
    for key, value in shown.items():
        click.echo(f"{key:14s} {value:.4f}")
    click.echo(f"dashboard: {path}")


@main.command()
@click.option("--strategy", default="ensemble", show_default=True, type=click.Choice(["ensemble", "ml"]))
@click.option("--broker", default="paper", show_default=True, type=click.Choice(["paper", "alpaca"]),
              help="alpaca needs APCA_API_KEY_ID / APCA_API_SECRET_KEY (paper endpoint unless APCA_API_BASE_URL).")
@click.option("--assets", default="AAPL", show_default=True, help=ASSETS_HELP)
@click.option("--feed", default=None, type=click.Choice(["simulated", "alpaca", "yfinance", "ccxt"]),
              help="Bar source: simulated (the seeded replay tape), or real bars polled as each closes from "
                   "alpaca (APCA_API_DATA_URL), yfinance or ccxt (CCXT_EXCHANGE). Default: simulated with "
                   "--broker paper, alpaca with --broker alpaca.")
@click.option("--interval", default="5m", show_default=True, help="Bar interval; real feeds: 1m, 5m, 15m or 1h.")
@click.option("--speed", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Replay speed (--feed simulated only): 0 = as fast as possible, 1 = real time, 60 = a minute per second.")
@click.option("--bars", default=None, type=click.IntRange(1),
              help="Replay: bars of the tape (default 2000). Real feed: stop after this many new bars (default: run until Ctrl+C).")
@click.option("--warmup-bars", default=200, show_default=True, type=click.IntRange(0),
              help="Real feed, fresh start: past bars that fill the buffers and features before trading.")
@click.option("--poll-delay", default=2.0, show_default=True, type=click.FloatRange(min=0),
              help="Real feed: seconds after a bar closes before asking for it (provider latency).")
@click.option("--capital", default=100_000.0, show_default=True, type=click.FloatRange(min=1.0))
@click.option("--max-catchup-days", default=5.0, show_default=True, type=click.FloatRange(min=0),
              help="Real feed restart: refuse to resume from a state whose last bar is older (0: no limit).")
@click.option("--checkpoint-interval", default=None, type=click.IntRange(0),
              help="Bars between checkpoints (default 50 on the replay, 1 on a real feed: a restart then resumes "
                   "exactly after the last bar processed).")
@click.option("--retrain/--no-retrain", default=True, show_default=True)
@click.option("--retrain-interval", default=500, show_default=True, type=click.IntRange(1))
@click.option("--retrain-min-samples", default=200, show_default=True, type=click.IntRange(1))
@click.option("--sharpe-threshold", default=0.0, show_default=True)
@click.option("--max-drawdown", default=0.15, show_default=True, type=click.FloatRange(0, 1, min_open=True))
@click.option("--daily-loss-limit", default=0.03, show_default=True, type=click.FloatRange(0, 1, min_open=True))
@click.option("--close-on-exit/--keep-positions", default=None,
              help="Flatten on shutdown (default: yes on paper, no on alpaca).")
@click.option("--allow-mismatch", is_flag=True, help="Start even if the broker's book differs from the saved state.")
@click.option("--run-name", default="live", show_default=True, help="Ledger folder under warehouse/ledger/.")
@click.option("--seed", default=7, show_default=True)
def live(strategy: str, broker: str, feed: str | None, assets: str, interval: str, speed: float, bars: int | None,
         warmup_bars: int, poll_delay: float, max_catchup_days: float, capital: float,
         checkpoint_interval: int | None, retrain: bool,
         retrain_interval: int, retrain_min_samples: int, sharpe_threshold: float, max_drawdown: float,
         daily_loss_limit: float, close_on_exit: bool | None, allow_mismatch: bool, run_name: str, seed: int) -> None:
    """Run the self-training live loop bar by bar (state: warehouse/state/system_state.pt; ledger:
    warehouse/ledger/<run-name>/). Ctrl+C closes positions where configured and saves state; a
    restart resumes after the last bar processed (a real feed then processes the bars that closed
    meanwhile, none skipped). A feed that fails (unknown symbol, provider unreachable after
    retries) stops the loop cleanly with the state saved."""
    from quant_assets.live_runner import LiveOptions, default_feed, run_live
    from quant_lib.live.feed import FeedError

    feed = feed or default_feed(broker)
    if feed != "simulated" and speed != 0:
        raise click.UsageError(f"--speed applies to the simulated replay only; --feed {feed} runs at the market's pace")
    if feed != "simulated" and interval not in ("1m", "5m", "15m", "1h"):
        raise click.BadParameter(f"{interval!r}: --feed {feed} serves 1m, 5m, 15m or 1h bars", param_hint="--interval")
    if feed == "simulated" and bars is None:
        bars = 2_000
    if checkpoint_interval is None:
        checkpoint_interval = 50 if feed == "simulated" else 1
    options = LiveOptions(strategy=strategy, broker=broker, assets=_symbols(assets), interval=interval, speed=speed,
                          bars=bars, seed=seed, capital=capital, checkpoint_interval=checkpoint_interval,
                          retrain=retrain, retrain_interval=retrain_interval, retrain_min_samples=retrain_min_samples,
                          sharpe_threshold=sharpe_threshold, max_drawdown=max_drawdown,
                          daily_loss_limit=daily_loss_limit, close_on_exit=close_on_exit,
                          allow_mismatch=allow_mismatch, run_name=run_name, feed=feed, warmup_bars=warmup_bars,
                          poll_delay=poll_delay, max_catchup_days=max_catchup_days)
    try:
        trainer = run_live(options, _warehouse())
    except FeedError as error:
        raise click.ClickException(f"feed {feed} stopped: {error} (state saved; a restart resumes from it)") from error
    click.echo(f"processed up to bar_counter={trainer.bar_counter}; equity "
               f"{trainer.executor.get_portfolio_state()['equity']:.2f}")


@main.command()
@click.option("--host", default=None, help="Address to bind (default API_HOST, 127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Port (default API_PORT, 8000).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the read-only REST API and the dashboard over the latest published snapshot (the same
    as `make serve`); never opens the warehouse."""
    from quant_api.server import serve as serve_api

    serve_api(host, port)


if __name__ == "__main__":
    main()
