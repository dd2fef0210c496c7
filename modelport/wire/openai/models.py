"""/v1/models and /v1/models/{id} in OpenAI's shape: a list object and model objects.

OpenAI's model object is `id`, `object: "model"`, `created` (Unix seconds), `owned_by`.
Ours adds what a client of a gateway wants to know (`context_window`, `backend`, `ready`,
`capabilities`); SDKs keep unknown fields. An alias is a model object owned by "alias"
with its `targets` in the order they are tried.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from modelport.types import BackendModel

JSONObject = dict[str, Any]
# The `native` entry where a hub's agent upstream says which agent and at what prices.
AGENT_ENTRY = "modelport_agent"
_encode = msgspec.json.Encoder().encode


def created_of(native: Mapping[str, Any]) -> int:
    """The engine's `created` (Unix seconds) when its model entry has one, else 0 (unknown)."""
    value = native.get("created")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0


def model_object(model: BackendModel, *, owned_by: str, backend: str, ready: bool) -> JSONObject:
    """One served model: OpenAI's four fields, then ours (and, for a hub's agent, which
    agent serves it at what price: `native["modelport_agent"]`, hub/backend.py)."""
    obj: JSONObject = {
        "id": model.id,
        "object": "model",
        "created": created_of(model.native),
        "owned_by": owned_by,
        "context_window": model.context_window,
        "backend": backend,
        "ready": ready,
        "capabilities": msgspec.structs.asdict(model.capabilities),
    }
    agent = model.native.get(AGENT_ENTRY)
    if agent is not None:
        obj["agent"] = agent
    return obj


def alias_object(alias: str, targets: Iterable[str]) -> JSONObject:
    return {
        "id": alias,
        "object": "model",
        "created": 0,
        "owned_by": "alias",
        "targets": list(targets),
    }


def encode_model_list(objects: Iterable[JSONObject]) -> bytes:
    return _encode({"object": "list", "data": list(objects)})


def encode_model(obj: JSONObject) -> bytes:
    return _encode(obj)
