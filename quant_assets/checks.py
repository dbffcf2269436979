"""Turn `quant_lib` check outcomes into Dagster asset-check results."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, Failure, MetadataValue, Output

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


def validated_output(
    value: object, outcomes: Iterable[CheckOutcome], metadata: dict | None = None
) -> Iterator[Output | AssetCheckResult]:
    """Validate before the write: yield the `Output` (which the IO manager writes) only when
    every blocking outcome passed, then the check results. When a blocking check fails, yield
    the check results (the UI still shows them) and raise `Failure`: nothing is written and the
    partition is not marked materialized, so the next run retries it.

        yield from validated_output(frame, price_checks(...), metadata={...})
    """
    outcomes = list(outcomes)
    results = to_check_results(outcomes)
    blocked = [o for o in outcomes if o.blocking and not o.passed]
    if blocked:
        yield from results
        raise Failure(
            description="not written: blocking checks failed before the write: "
            + "; ".join(f"{o.name}: {o.message}" for o in blocked),
            metadata={"failed_checks": ", ".join(o.name for o in blocked)},
            allow_retries=False,
        )
    yield Output(value, metadata=metadata or {})
    yield from results
