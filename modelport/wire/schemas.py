"""JSON Schemas of what the gateway takes and answers, built from the codecs' own data.

Request bodies of the dialects with a field table (wire/*/fields.py) are built from the
table: its top-level rows are the body's properties (no more, no fewer) and every nested
row (`messages[].content[].text`) is a path in the schema, each with its note. The JSON
type of each field comes from wire/schema_types.py, which says what the decoder reads.
Bodies are open (`additionalProperties`): a passthrough carries vendor fields as they came.

Answers come from the msgspec Structs the codecs decode an engine's answer with (an answer
the gateway relays is one of those; one it encodes has the same shape), through
`msgspec.json.schema_components`; the error bodies from each dialect's encoder's shape.
docs/openapi.md says which source each route has and why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from modelport.wire.fields import FieldTable, Row
from modelport.wire.schema_types import TYPES, JSONSchema, array, enum, nullable, obj

COMPONENTS = "#/components/schemas/{name}"


# -- request bodies from a field table ---------------------------------------------------


def path_steps(path: str) -> list[str]:
    """`messages[].content[].text` -> ["messages", "[]", "content", "[]", "text"]."""
    steps: list[str] = []
    for part in path.split("."):
        name, brackets = part, 0
        while name.endswith("[]"):
            name, brackets = name[:-2], brackets + 1
        steps.append(name)
        steps.extend(["[]"] * brackets)
    return steps


class _Node:
    """One path of the table: its row (if one names it) and the paths under it."""

    def __init__(self) -> None:
        self.row: Row | None = None
        self.path = ""
        self.children: dict[str, _Node] = {}

    def at(self, step: str) -> _Node:
        child = self.children.get(step)
        if child is None:
            child = self.children[step] = _Node()
            joined = f"{self.path}.{step}" if self.path and step != "[]" else self.path + step
            child.path = joined
        return child


def _tree(rows: Iterable[Row]) -> _Node:
    root = _Node()
    for row in rows:
        node = root
        for step in path_steps(row.path):
            node = node.at(step)
        node.row = row
    return root


def _node_schema(node: _Node, types: Mapping[str, JSONSchema]) -> JSONSchema:
    shape: JSONSchema | None = None
    if "[]" in node.children:
        shape = array(_node_schema(node.children["[]"], types))
    elif node.children:
        props = {k: _node_schema(n, types) for k, n in node.children.items()}
        shape = {"type": "object", "properties": props}
    typed = types.get(node.path) if node.path else None
    if typed is None:
        schema: JSONSchema = dict(shape or {})
    elif shape is None:
        schema = dict(typed)
    else:
        schema = merge(typed, shape)
    if node.row is not None and node.row.note:
        schema["description"] = node.row.note
    return schema


def merge(typed: JSONSchema, shape: JSONSchema) -> JSONSchema:
    """`typed` (what the decoder reads) with the nested paths of `shape` (the table's) in:
    into the branch of the same JSON type, or as another branch when none has it."""
    if "anyOf" in typed:
        branches = list(typed["anyOf"])
        for i, branch in enumerate(branches):
            if branch.get("type") == shape.get("type"):
                branches[i] = merge(branch, shape)
                return {**typed, "anyOf": branches}
        return {**typed, "anyOf": [*branches, shape]}
    if "type" not in shape:  # a row with no type of its own: its note, the decoder's type
        return {**shape, **typed}
    if typed.get("type") != shape.get("type"):
        return {"anyOf": [typed, shape]}
    out = {**shape, **typed}
    if "properties" in shape:
        props = dict(typed.get("properties", {}))
        for key, sub in shape["properties"].items():
            props[key] = merge(props[key], sub) if key in props else sub
        out["properties"] = props
    if "items" in shape:
        out["items"] = merge(typed["items"], shape["items"]) if "items" in typed else shape["items"]
    return out


def check_types(table: FieldTable, types: Mapping[str, JSONSchema]) -> None:
    """A type for a field the table does not have (as a row, or as the way to nested rows:
    `messages[].content` for `messages[].content[].text`) is a mistake in one of the two."""
    known = set(table.by_path)
    for path in table.by_path:
        known |= {path[:i] for i, c in enumerate(path) if c in ".["}
    unknown = sorted(set(types) - known)
    if unknown:
        raise ValueError(f"{table.title}: types for fields the table lacks: {unknown}")


def request_schema(table: FieldTable, required: Sequence[str]) -> JSONSchema:
    """The request body a dialect takes: every field of `table`, typed where
    wire/schema_types.py knows the type."""
    types = TYPES.get(table.title, {})
    check_types(table, types)
    schema = _node_schema(_tree(table.rows), types)
    schema["required"] = list(required)
    schema["additionalProperties"] = True
    schema["description"] = f"{table.title}: fields and their fates in docs/fields.md"
    return schema


def schema_paths(schema: JSONSchema, prefix: str = "") -> set[str]:
    """Every field path a schema describes, in the tables' spelling (`a[].b.c`)."""
    paths: set[str] = set()
    for branch in [schema, *schema.get("anyOf", ())]:
        for key, sub in branch.get("properties", {}).items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            paths |= schema_paths(sub, path)
        if "items" in branch:
            paths |= schema_paths(branch["items"], prefix + "[]")
    return paths


# -- answers from the codecs' Structs -------------------------------------------------------


def struct_schemas(types: Sequence[type[Any]]) -> tuple[list[JSONSchema], dict[str, JSONSchema]]:
    """The schemas of `types` (refs into components) and the components they need."""
    schemas, components = msgspec.json.schema_components(types, ref_template=COMPONENTS)
    return list(schemas), dict(components)


# -- error bodies: the shapes wire/*/errors.py encode -----------------------------------------

OPENAI_ERROR = obj(
    ("error",),
    error=obj(
        ("message", "type"),
        message={"type": "string"},
        type={"type": "string"},
        param=nullable({"type": "string"}),
        code=nullable({"type": "string"}),
    ),
)
ANTHROPIC_ERROR = obj(
    ("type", "error"),
    type=enum("error"),
    error=obj(("type", "message"), type={"type": "string"}, message={"type": "string"}),
)
OLLAMA_ERROR = obj(("error",), error={"type": "string"})
