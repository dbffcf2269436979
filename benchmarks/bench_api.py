"""API load benchmark: 200 requests/s mixed over the read endpoints for 30 s against a real
uvicorn server (a subprocess, `python -m quant_api`) on 127.0.0.1, from a bounded open-loop
async client (httpx). Reports errors and latency percentiles per endpoint.

Baselines measured in the same run:
- the framework floor: the same rate on `/api/v1/health` (no snapshot read, never cached), and
  the ratio of the mixed p99 to it;
- snapshot reads: opening the snapshot read-only for each query (a reader without the
  per-snapshot-id cache) vs a cursor on the cached connection vs the memoized rows.

Targets: 0 errors, p99 under 50 ms. Needs a published snapshot: run `make run` first.

    python benchmarks/bench_api.py [--rate 200] [--seconds 30] [--client httpx|aiohttp] [--serving-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

READ_PATHS = [
    "/api/v1/quant/rankings?limit=50",
    "/api/v1/quant/portfolio",
    "/api/v1/quant/portfolios",
    "/api/v1/quant/risk/metrics?portfolio_value=2500000",
    "/api/v1/quant/execution/vwap?shares=25000&volume=1500000&volatility=0.02",
    "/api/v1/quant/weekly/trades",
    "/api/v1/quant/dashboard/summary",
    "/api/v1/quant/ml/signals",
    "/api/v1/quant/live/status",
    "/api/v1/ready",
]
MAX_IN_FLIGHT = 64


def _cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(serving_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "SERVING_DIR": str(serving_dir), "API_HOST": "127.0.0.1", "API_PORT": str(port)}
    return subprocess.Popen(
        [sys.executable, "-m", "quant_api", "--log-level", "warning"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


class LoadClient:
    """GET -> status code over keep-alive connections, with aiohttp (default) or httpx (about
    3x less client CPU per request: on 2 shared cores the load generator competes with the server)."""

    def __init__(self, kind: str):
        self.kind = kind

    async def __aenter__(self):
        if self.kind == "aiohttp":
            import aiohttp

            connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT)
            self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10))
        else:
            import httpx

            limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)
            self.session = httpx.AsyncClient(limits=limits, timeout=10.0)
        return self

    async def __aexit__(self, *exc) -> None:
        await (self.session.close() if self.kind == "aiohttp" else self.session.aclose())

    async def status_of(self, url: str) -> int:
        if self.kind == "aiohttp":
            async with self.session.get(url) as response:
                await response.read()
                return response.status
        return (await self.session.get(url)).status_code


async def wait_ready(client, base: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await client.status_of(base + "/api/v1/ready") == 200:
                return
        except Exception:  # noqa: BLE001 - not listening yet
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("the API did not become ready: is a snapshot published (`make run`)?")


async def open_loop(client, base: str, paths: list[str], rate: float, seconds: float) -> dict[str, list]:
    """Fire requests on a fixed schedule (open loop: a slow answer does not slow the sender),
    at most MAX_IN_FLIGHT at once; returns per path the latencies (s) and the failures."""
    results: dict[str, list] = defaultdict(list)
    failures: list[str] = []
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    tasks = []

    async def one(path: str, scheduled: float) -> None:
        async with gate:
            try:
                status = await client.status_of(base + path)
                elapsed = time.perf_counter() - scheduled
                if status != 200:
                    failures.append(f"{path}: HTTP {status}")
                results[path].append(elapsed)
            except Exception as exc:  # noqa: BLE001 - every failure counts
                failures.append(f"{path}: {type(exc).__name__}")

    start = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(paths[i % len(paths)], scheduled)))
    await asyncio.gather(*tasks)
    results["__failures__"] = failures
    results["__wall__"] = [time.perf_counter() - start]
    return results


def summarize(title: str, results: dict[str, list]) -> np.ndarray:
    failures, wall = results.pop("__failures__"), results.pop("__wall__")[0]
    everything = np.concatenate([np.asarray(v) for v in results.values()]) * 1e3
    print(f"\n{title}: {everything.size + len(failures)} requests in {wall:.1f} s "
          f"({(everything.size + len(failures)) / wall:.0f}/s), errors: {len(failures)}")
    print(f"  {'endpoint':<72} {'n':>5} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}  (ms)")
    for path, latencies in sorted(results.items()):
        ms = np.asarray(latencies) * 1e3
        print(f"  {path:<72} {ms.size:>5} {np.percentile(ms, 50):>7.1f} {np.percentile(ms, 95):>7.1f} "
              f"{np.percentile(ms, 99):>7.1f} {ms.max():>7.1f}")
    print(f"  {'ALL':<72} {everything.size:>5} {np.percentile(everything, 50):>7.1f} "
          f"{np.percentile(everything, 95):>7.1f} {np.percentile(everything, 99):>7.1f} {everything.max():>7.1f}")
    for failure in failures[:5]:
        print("  failure:", failure)
    return everything


def snapshot_read_baseline(serving_dir: Path, repeats: int = 200) -> dict[str, float]:
    """Median ms of one rankings query three ways: opening the snapshot read-only per query (no
    per-snapshot-id cache), a cursor on the cached connection, and the memoized `Snapshot.rows`."""
    import duckdb

    from quant_resources.snapshots import SnapshotReader, read_pointer

    path = serving_dir / read_pointer(serving_dir).file
    sql = 'select * from rankings order by "rank" limit 50'

    def timed(fn, n: int) -> float:
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
        return float(np.median(samples) * 1e3)

    def fresh() -> None:
        conn = duckdb.connect(str(path), read_only=True)
        conn.execute(sql).fetchall()
        conn.close()

    reader = SnapshotReader(serving_dir)

    def cursor() -> None:
        cur = reader.current().connection.cursor()
        cur.execute(sql).fetchall()
        cur.close()

    figures = {
        "open per query": timed(fresh, repeats // 4),
        "cached connection": timed(cursor, repeats),
        "memoized rows": timed(lambda: reader.current().rows(sql), repeats),
    }
    reader.close()
    return figures


async def run(args) -> int:
    from quant_resources.snapshots import read_pointer

    serving_dir = Path(args.serving_dir).resolve()
    if read_pointer(serving_dir) is None:
        raise SystemExit(f"no snapshot in {serving_dir}: run `make run` first")
    port = _free_port()
    server = start_server(serving_dir, port)
    base = f"http://127.0.0.1:{port}"
    print(f"load client: {args.client}; server: python -m quant_api on {base}")
    try:
        async with LoadClient(args.client) as client:
            await wait_ready(client, base)
            # Warm-up: first queries and the hedge repricer's import (scipy/sklearn, done off the request path).
            for path in READ_PATHS + ["/api/v1/quant/risk/metrics?volatility=0.2"]:
                await client.status_of(base + path)
            server_cpu, client_cpu = _cpu_seconds(server.pid), time.process_time()
            mixed = summarize(
                f"mixed read endpoints at {args.rate:.0f}/s for {args.seconds:.0f} s",
                await open_loop(client, base, READ_PATHS, args.rate, args.seconds),
            )
            server_cpu, client_cpu = _cpu_seconds(server.pid) - server_cpu, time.process_time() - client_cpu
            print(f"  CPU during the mixed load: server {server_cpu:.1f} s ({server_cpu / mixed.size * 1e3:.2f} ms/request), "
                  f"load client {client_cpu:.1f} s ({client_cpu / mixed.size * 1e3:.2f} ms/request); "
                  f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            floor = summarize(
                f"baseline: /api/v1/health at {args.rate:.0f}/s for {args.floor_seconds:.0f} s",
                await open_loop(client, base, ["/api/v1/health"], args.rate, args.floor_seconds),
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    reads = snapshot_read_baseline(serving_dir)
    p99, floor_p99 = np.percentile(mixed, 99), np.percentile(floor, 99)
    print(f"\nmixed p99 {p99:.1f} ms vs framework floor p99 {floor_p99:.1f} ms: ratio {p99 / floor_p99:.2f}")
    print("rankings query, median ms: " + ", ".join(f"{k} {v:.3f}" for k, v in reads.items())
          + f" (open per query / cached connection: x{reads['open per query'] / reads['cached connection']:.1f})")
    print(f"targets: 0 errors, p99 < 50 ms -> p99 {'OK' if p99 < 50 else 'MISSED'}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of the mixed load")
    parser.add_argument("--floor-seconds", type=float, default=10.0, help="duration of the /health baseline")
    parser.add_argument("--serving-dir", default=str(ROOT / "warehouse" / "serving"))
    parser.add_argument(
        "--client", choices=["httpx", "aiohttp"], default="aiohttp" if importlib.util.find_spec("aiohttp") else "httpx",
        help="load generator's HTTP client (default aiohttp when installed: httpx costs ~3x the client CPU per request)",
    )
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
