"""Ollama's model routes as a client reads them: /api/tags, /api/show, /api/ps, /api/version.

Shapes from ollama/ollama's api/types.go (ListModelResponse, ShowResponse,
ProcessModelResponse, ModelDetails) and server/routes.go, as docs/wire.md ("Ollama's API as
served to clients") sets them down. Every served model is described from what the router
knows of it (a canonical `BackendModel`): its id, context window, capabilities, whether
it is loaded; an Ollama engine's own tags entry (`native`) adds size, digest, details and
date, a llama-server entry's `meta` adds size and parameter count. What no engine says is
answered the way Ollama answers an unknown: an empty string, 0, or the field left out.

The ollama Python library needs `model_info` in a show answer (a required field of its
ShowResponse) and Open WebUI and Continue read `<general.architecture>.context_length`
from it; both libraries parse `modified_at` and `expires_at` as datetimes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from modelport.types import BackendModel
from modelport.wire.validate import fail, load_body, optional_text

JSONObject = dict[str, Any]
_encode = msgspec.json.Encoder().encode

# The newest Ollama release when its API was read for this (v0.32.15; 0.33.0 was at rc2).
# Clients compare it: Open WebUI and editor plugins gate features on a minimum version, so
# an old or made-up number would switch off routes this gateway serves.
VERSION = "0.32.15"
RUNNING = "Ollama is running"
EPOCH = "1970-01-01T00:00:00Z"
# What Ollama writes for a model kept loaded forever (keep_alive < 0: now + Go's largest
# Duration, ~292 years): our engines keep a model until they stop.
FOREVER_S = 292 * 365 * 24 * 3600


def capability_words(model: BackendModel) -> list[str]:
    """Ollama's capability words (types/model/capability.go) for ours. Every model
    completes unless its engine's own list says otherwise (an Ollama embedding model's tags
    entry lists only "embedding"): no other engine says, and most models chat."""
    caps = model.capabilities
    listed = model.native.get("capabilities")
    completes = not isinstance(listed, list) or "completion" in listed
    words = ["completion"] if completes else []
    for flag, word in (
        (caps.tools, "tools"),
        (caps.vision, "vision"),
        (caps.embeddings, "embedding"),
        (caps.thinking, "thinking"),
    ):
        if flag:
            words.append(word)
    return words


def details(model: BackendModel) -> JSONObject:
    """ModelDetails: an Ollama engine's own, else what a llama-server entry says, else blank
    (Go marshals every field of it; `families` is null when unknown)."""
    given = model.native.get("details")
    if isinstance(given, dict):
        return given
    meta = model.native.get("meta")
    params = meta.get("n_params") if isinstance(meta, dict) else None
    return {
        "parent_model": "",
        "format": "gguf" if isinstance(meta, dict) else "",
        "family": "",
        "families": None,
        "parameter_size": _parameter_size(params) if isinstance(params, int) else "",
        "quantization_level": "",
    }


def _parameter_size(params: int) -> str:
    """Ollama's words for a parameter count: 268098176 -> "268.10M", 3.2e9 -> "3.2B"."""
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if params >= scale:
            return f"{params / scale:.2f}".rstrip("0").rstrip(".") + unit
    return str(params)


def _int_field(native: Mapping[str, Any], key: str) -> int:
    value = native.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    meta = native.get("meta")
    nested = meta.get(key) if isinstance(meta, dict) else None
    return nested if isinstance(nested, int) and not isinstance(nested, bool) else 0


def modified_at(native: Mapping[str, Any]) -> str:
    """An Ollama engine's date, else an OpenAI-style `created`, else the epoch."""
    given = native.get("modified_at")
    if isinstance(given, str) and given:
        return given
    created = native.get("created")
    if isinstance(created, int) and not isinstance(created, bool) and created > 0:
        return _rfc3339(created)
    return EPOCH


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def digest(model: BackendModel) -> str:
    """An Ollama engine's digest, else a stable sha256 of the id (the same name, the same
    digest, as clients that cache by digest expect)."""
    given = model.native.get("digest")
    if isinstance(given, str) and given:
        return given
    return hashlib.sha256(model.id.encode()).hexdigest()


def tag_entry(name: str, model: BackendModel) -> JSONObject:
    """ListModelResponse for `model` under `name` (its id, or an alias naming it)."""
    return {
        "name": name,
        "model": name,
        "modified_at": modified_at(model.native),
        "size": _int_field(model.native, "size"),
        "digest": digest(model),
        "details": details(model),
        "capabilities": capability_words(model),
    }


def encode_tags(entries: Iterable[JSONObject]) -> bytes:
    return _encode({"models": list(entries)})  # [] when empty, never null, as Ollama


def decode_show_request(body: bytes) -> str:
    """The model a show request names: `model`, or the older `name` when `model` is empty.
    Everything else in it (verbose, system, template, options) changes nothing here."""
    obj = load_body(body)
    name = optional_text(obj, "model", "model") or optional_text(obj, "name", "name")
    if not name:
        fail("model", "field required")
    return name


def model_info(model: BackendModel) -> JSONObject:
    """The GGUF key-value map Ollama answers: the architecture, and its context length
    under `<architecture>.context_length` when the engine said how long it is."""
    family = details(model).get("family")
    arch = family if isinstance(family, str) and family else "unknown"
    info: JSONObject = {"general.architecture": arch, "general.basename": model.id}
    if model.context_window is not None:
        info[f"{arch}.context_length"] = model.context_window
    return info


def encode_show(name: str, model: BackendModel) -> bytes:
    """ShowResponse: `model_info` always (never omitted, as in Ollama), the capabilities,
    details and date; a Modelfile that says where the model is served from."""
    return _encode(
        {
            "modelfile": f"# Modelfile served by modelport\nFROM {name}\n",
            "details": details(model),
            "model_info": model_info(model),
            "capabilities": capability_words(model),
            "modified_at": modified_at(model.native),
        }
    )


def ps_entry(model: BackendModel, *, now: float) -> JSONObject:
    """ProcessModelResponse for a loaded model; `now` is the caller's clock (Unix seconds)."""
    size = _int_field(model.native, "size")
    vram = _int_field(model.native, "size_vram")
    return {
        "name": model.id,
        "model": model.id,
        "size": size,
        "digest": digest(model),
        "details": details(model),
        "expires_at": _rfc3339(now + FOREVER_S),
        "size_vram": vram,
        "context_length": model.context_window or 0,
    }


def encode_ps(entries: Iterable[JSONObject]) -> bytes:
    return _encode({"models": list(entries)})


def encode_version() -> bytes:
    return _encode({"version": VERSION})
