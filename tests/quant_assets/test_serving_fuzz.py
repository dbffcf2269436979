"""Schemathesis fuzz of the API's OpenAPI schema against the served test snapshot: no 5xx,
status codes, content types and bodies as documented. Bounded: a few derandomized examples per
read operation (POST /quant/backtest is documented as 501 without a Dagster webserver and has
its own tests)."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from quant_api.app import create_app
from quant_resources.settings import PlatformSettings

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 8


def test_read_endpoints_conform_to_their_schema(served_snapshot, tmp_path):
    app = create_app(PlatformSettings(warehouse_dir=tmp_path, serving_dir=served_snapshot.serving_dir))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    fuzzed = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() != "GET":
            continue

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case):
            case.call_and_validate(checks=CHECKS)

        fuzz()
        fuzzed.append(operation.path)
    assert len(fuzzed) == 14, fuzzed
