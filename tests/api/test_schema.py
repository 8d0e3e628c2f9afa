"""schemathesis: the API fuzzed against its own OpenAPI schema never answers 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from api.apps import build
from conveyor.api import create_app

api = create_app(build("memory://"))
# streams never end, the result wait may block for minutes, and /health answers 503 by
# design (min_workers): each is tested on its own
schema = schemathesis.openapi.from_asgi("/openapi.json", api).exclude(
    path_regex=r"^/events|/result$|^/health$"
)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error])
