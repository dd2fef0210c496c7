"""schemathesis against the gateway's own /openapi.json, served by a running gateway over
protocol fakes (issue 11, "hostile input"): every operation it publishes is called with
bodies generated from the published schemas; no answer is a 5xx, and every answer has a
status, content type and body the document declares for it.

Bounded (`EXAMPLES` per operation) so the whole module runs in seconds on two cores.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from modelport.gateway.openapi import OPENAPI
from tests.gateway.threaded import ThreadedGateway

EXAMPLES = 25
SERVED = ("qwen", "claude-x")


@pytest.fixture(scope="module")
def served() -> Iterator[ThreadedGateway]:
    # vllm relays OpenAI, Anthropic, Responses and legacy completions and embeds;
    # an Anthropic engine makes every other dialect transcoded.
    with ThreadedGateway([("vllm", ["qwen"]), ("anthropic", ["claude-x"])]) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def live_schema(served: ThreadedGateway) -> Any:
    """The document as the running gateway serves it (not the module's dict)."""
    return schemathesis.openapi.from_url(served.url + "/openapi.json")


def _served_model(case: Any) -> None:
    """Most generated model names are unknown (a 404 before any engine is asked); half the
    cases name a served model instead, so the bodies reach the engines too."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        name = body["model"]
        if len(name) % 2 == 0:
            body["model"] = SERVED[len(name) % 4 // 2]


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Every operation the document publishes (read from the module; the test reads the served one).
OPERATIONS = [
    (path, method.upper())
    for path, item in OPENAPI["paths"].items()
    for method in item
    if method in ("get", "post")
]


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_every_operation_conforms(
    path: str, method: str, live_schema: Any, served: ThreadedGateway
) -> None:
    operation = live_schema[path][method]

    # schemathesis's own pytest plugin does not run on pytest 9: its strategy, driven here.
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        _served_model(case)
        case.call_and_validate(checks=CHECKS, timeout=10)

    run()
