"""The OpenAPI document: valid OpenAPI 3.1, and every route of the app is in it."""

from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import schemathesis
from aiohttp import hdrs

from config import Settings
from dispatcher.app import create_app
from dispatcher.openapi import openapi_document


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    schema = schemathesis.openapi.from_dict(document)

    schema.validate()
    operations = [result.ok() for result in schema.get_all_operations()]  # an unloadable operation has no ok()
    assert len(operations) == sum(len(item) for item in document["paths"].values())


def test_every_reference_in_the_document_resolves() -> None:
    document = openapi_document()

    references = set(_references(document))

    assert references
    assert {ref.removeprefix("#/components/schemas/") for ref in references} <= set(document["components"]["schemas"])


def test_every_schema_in_the_document_is_valid_json_schema_2020_12() -> None:
    schemas = openapi_document()["components"]["schemas"]

    for schema in schemas.values():
        jsonschema_rs.meta.validate(schema)


def test_every_route_of_the_app_is_documented_and_nothing_else() -> None:
    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0", api_tokens="token", secret_key="secret"))
    routes = {(route.method, route.resource.canonical) for route in app.router.routes() if route.resource}

    documented = {(method.upper(), path) for path, item in openapi_document()["paths"].items() for method in item}

    assert {route for route in routes if route[0] != hdrs.METH_HEAD} == documented
    assert {(hdrs.METH_GET, path) for method, path in routes if method == hdrs.METH_HEAD} <= documented


def test_every_route_but_the_public_ones_asks_for_the_bearer_token() -> None:
    document = openapi_document()

    open_routes = {
        path for path, item in document["paths"].items() for operation in item.values() if "security" in operation
    }
    secured = [
        operation for item in document["paths"].values() for operation in item.values() if "security" not in operation
    ]

    assert open_routes == {"/healthz", "/readyz", "/metrics", "/openapi.json", "/callbacks/{vendor}/{secret}"}
    assert document["security"] == [{"bearer": []}]
    assert all("401" in operation["responses"] for operation in secured)


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)
