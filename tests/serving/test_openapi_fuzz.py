"""Every path of the service's OpenAPI description, fuzzed with schemathesis: valid and
invalid inputs alike never cause a server error, and answers conform to the description."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings

from movierec.serving.openapi import OPENAPI
from tests.support.serving import Running

schema = schemathesis.openapi.from_dict(OPENAPI)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_holds_up(case: schemathesis.Case, serving: Running) -> None:
    response = case.call(base_url=f"http://127.0.0.1:{serving.port}")
    assert response.status_code < 500
    case.validate_response(response)
