"""Dagster wiring of the platform: assets, checks, sensors, schedules, jobs and the code location.

Importing this package silences, once and only for them, Dagster's beta warnings about the two
parameters this project uses on purpose:
- `backfill_policy` of `@asset` (single-run backfills: a ten-year backfill is one run);
- `allow_nonexistent_upstream_partitions` of `TimeWindowPartitionMapping` (lookback windows that
  reach before the first partition).
Every other warning still shows. The filter matches Dagster's message rather than its
`BetaWarning` class so that this package (and the `quant` CLI in it) does not import Dagster.
"""

import warnings

for _parameter in ("backfill_policy", "allow_nonexistent_upstream_partitions"):
    warnings.filterwarnings("ignore", message=rf"Parameter `{_parameter}` of .* is currently in beta")
