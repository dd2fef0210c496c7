"""/openapi.json's request schemas are the field tables (issue 11, point 12): a field a
table has and the schema lacks, or the other way round, fails here; its answer and error
schemas are the shapes the codecs write.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelport.errors import BackendError, InvalidRequest, RateLimited, Unsupported
from modelport.gateway.openapi import OPENAPI
from modelport.types import WireFormat
from modelport.wire import codec_for
from modelport.wire.anthropic.errors import encode_error as anthropic_error
from modelport.wire.fields import FieldTable
from modelport.wire.ollama.errors import encode_error as ollama_error
from modelport.wire.openai.errors import encode_error as openai_error
from modelport.wire.openai.fields import EMBED_FIELDS
from modelport.wire.schema_types import TYPES
from modelport.wire.schemas import (
    ANTHROPIC_ERROR,
    OLLAMA_ERROR,
    OPENAI_ERROR,
    check_types,
    path_steps,
    schema_paths,
)

ROUTES: dict[WireFormat, tuple[str, ...]] = {
    WireFormat.OPENAI: ("/v1/chat/completions",),
    WireFormat.ANTHROPIC: ("/v1/messages", "/v1/messages/count_tokens"),
    WireFormat.RESPONSES: ("/v1/responses",),
    WireFormat.OLLAMA: ("/api/chat",),
    WireFormat.OLLAMA_GENERATE: ("/api/generate",),
}
TABLES: list[tuple[FieldTable, str]] = [
    (table, route)
    for f, routes in ROUTES.items()
    if (table := codec_for(f).fields) is not None
    for route in routes
] + [(EMBED_FIELDS, "/v1/embeddings")]


def body_schema(route: str) -> dict[str, Any]:
    post = OPENAPI["paths"][route]["post"]
    schema: dict[str, Any] = post["requestBody"]["content"]["application/json"]["schema"]
    return schema


@pytest.mark.parametrize(("table", "route"), TABLES, ids=[r for _, r in TABLES])
def test_the_body_schema_has_every_field_of_the_table_and_no_other(
    table: FieldTable, route: str
) -> None:
    schema = body_schema(route)
    top = {r.path for r in table.top_level()}
    assert set(schema["properties"]) == top
    nested = {r.path for r in table.rows if not r.top_level}
    assert nested <= schema_paths(schema), sorted(nested - schema_paths(schema))


@pytest.mark.parametrize(("table", "route"), TABLES, ids=[r for _, r in TABLES])
def test_each_field_says_its_fate_and_the_typed_ones_their_type(
    table: FieldTable, route: str
) -> None:
    props = body_schema(route)["properties"]
    for row in table.top_level():
        if row.note:
            assert props[row.path]["description"] == row.note
    for path, typed in TYPES.get(table.title, {}).items():
        if path in props:  # a top-level field keeps what its decoder reads
            got = props[path]
            assert got.get("type") == typed.get("type"), path
            assert (
                got.get("anyOf", [])[: len(typed.get("anyOf", []))] == typed.get("anyOf", [])
                or "anyOf" in got
            ), path


def test_a_type_for_a_field_no_table_has_is_refused() -> None:
    table = codec_for(WireFormat.OPENAI).fields
    assert table is not None
    check_types(table, {"messages[].content": {}, "tools": {}})  # a row, a way to rows
    with pytest.raises(ValueError, match="max_tokenz"):
        check_types(table, {"max_tokenz": {"type": "integer"}})


def test_path_steps() -> None:
    assert path_steps("messages[].content[].image_url.url") == [
        "messages",
        "[]",
        "content",
        "[]",
        "image_url",
        "url",
    ]


def test_no_request_body_is_a_bare_object() -> None:
    """The defect: every body was `type: object` and nothing else."""
    for path, item in OPENAPI["paths"].items():
        if "post" in item:
            assert body_schema(path).get("properties"), path


@pytest.mark.parametrize(
    ("encode", "schema"),
    [
        (openai_error, OPENAI_ERROR),
        (anthropic_error, ANTHROPIC_ERROR),
        (ollama_error, OLLAMA_ERROR),
    ],
)
def test_error_schemas_are_what_the_encoders_write(encode: Any, schema: dict[str, Any]) -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    import msgspec

    for err in (
        InvalidRequest("messages: field required", param="messages"),
        Unsupported("n: 2 is not supported by x", param="n"),
        RateLimited("slow down", retry_after=1.0),
        BackendError("boom", status=502),
    ):
        jsonschema_rs.validate(schema, msgspec.json.decode(encode(err)))
