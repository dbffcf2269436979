"""Turn `quant_lib` check outcomes into Dagster asset-check results."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

from quant_lib.data.quality import CheckOutcome


def check_specs(asset: str, names: Sequence[tuple[str, str, bool]]) -> list[AssetCheckSpec]:
    """Specs for checks computed inside the asset: (name, description, blocking)."""
    return [AssetCheckSpec(name, asset=asset, description=desc, blocking=blocking) for name, desc, blocking in names]


def to_check_results(outcomes: Iterable[CheckOutcome]) -> list[AssetCheckResult]:
    results = []
    for outcome in outcomes:
        metadata = {"message": outcome.message}
        for key, value in outcome.details.items():
            if isinstance(value, str) and value.startswith("|"):
                metadata[key] = MetadataValue.md(value)
            elif isinstance(value, (int, float, str, bool)):
                metadata[key] = value
            else:
                metadata[key] = str(value)
        results.append(
            AssetCheckResult(
                check_name=outcome.name,
                passed=outcome.passed,
                severity=AssetCheckSeverity.ERROR if outcome.blocking else AssetCheckSeverity.WARN,
                metadata=metadata,
                description=outcome.message,
            )
        )
    return results
