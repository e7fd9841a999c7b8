"""Schemathesis against the API in-process, from the document it serves: requests generated from the
schema, valid and invalid, never get a 5xx nor an answer the document does not describe.

Each operation is driven through ``as_strategy`` with Hypothesis, one test per operation and mode:
schemathesis' pytest loader for a fixture (``from_fixture``) does not run on pytest 9.2.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from dispatcher.openapi import openapi_document
from tests.dispatcher.conftest import TOKEN

EXAMPLES = 50
POSTBACK_URLS = ("success_url", "failure_url")

CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            # Both judge whether the API accepts exactly what the schema allows. It accepts more on purpose
            # (D7's numbers as strings, null for a default), refuses some valid bodies by rules a JSON
            # schema does not state (content or template_id, a code strong enough for the policy), and
            # this test puts back the token and takes out postback URLs that a case may have negated.
            "positive_data_acceptance": {"enabled": False},
            "negative_data_rejection": {"enabled": False},
        },
    }
)

_PATHS = openapi_document()["paths"]
OPERATIONS = [
    pytest.param(method.upper(), path, mode, id=f"{method.upper()} {path} {mode.value}")
    for path, item in _PATHS.items()
    for method, operation in item.items()
    for mode in schemathesis.GenerationMode
    # an operation that takes nothing has nothing to make invalid
    if mode is schemathesis.GenerationMode.POSITIVE or "requestBody" in operation or "parameters" in operation
]


@pytest.fixture(scope="module")
def api_schema(served_app: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{served_app}/openapi.json", config=CONFIG)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path", "mode"), OPERATIONS)
def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(
    api_schema: schemathesis.BaseSchema, local_url: str, method: str, path: str, mode: schemathesis.GenerationMode
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}

    @given(case=api_schema[path][method].as_strategy(mode))
    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    def generated(case: schemathesis.Case) -> None:
        if isinstance(case.body, dict):
            for field in POSTBACK_URLS:  # a generated URL would have the worker POST to some host on the internet
                case.body.pop(field, None)
        case.call_and_validate(headers=headers, timeout=10)

    generated()
