"""Model-list entries into `BackendModel`s: one parser per shape of an engine's list.

An OpenAI-compatible engine lists its models at api_base + "/models" (or its profile's
`models_path`); what each entry says of the context window and capabilities differs by
engine. `generic_model` reads the fields most engines use; OpenRouter, Venice and LM
Studio have their own shapes. A `Profile` names its parser (`parse_model`); the
Anthropic backend reads its list with `first_int` too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from modelport.types import BackendModel, Capabilities

if TYPE_CHECKING:
    from modelport.backends.profiles import Profile

ModelParser = Callable[[dict[str, Any], "Profile"], BackendModel]


def first_int(entry: dict[str, Any], *paths: str) -> int | None:
    """The first positive integer found at any of the dotted paths."""
    for path in paths:
        value: Any = entry
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def generic_model(entry: dict[str, Any], profile: Profile) -> BackendModel:
    model_id = str(entry.get("id", ""))
    context = first_int(
        entry,
        "context_window",
        "max_model_len",  # vLLM
        "context_length",  # OpenRouter, Venice
        "max_context_length",  # LM Studio
        "loaded_context_length",
        "meta.n_ctx_train",  # llama-server (trained; /props has the runtime value)
    )
    if context is None:
        context = _context_from_table(model_id, profile.context_table)
    return BackendModel(
        id=model_id, context_window=context, capabilities=_reported(entry, profile), native=entry
    )


def _reported(entry: dict[str, Any], profile: Profile) -> Capabilities:
    """The profile's capabilities, with vision as the entry says where it says:
    `architecture.input_modalities` (llama-server's /v1/models, OpenRouter's shape)."""
    modalities = (entry.get("architecture") or {}).get("input_modalities")
    if not isinstance(modalities, list):
        return profile.capabilities
    return msgspec.structs.replace(profile.capabilities, vision="image" in modalities)


def _context_from_table(model_id: str, table: dict[str, int]) -> int | None:
    """Longest table prefix that the model id starts with (gpt-4o-2024-08-06 -> gpt-4o)."""
    best = ""
    for prefix in table:
        if model_id.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return table.get(best) if best else None


def openrouter_model(entry: dict[str, Any], profile: Profile) -> BackendModel:
    params = entry.get("supported_parameters") or []
    modalities = (entry.get("architecture") or {}).get("input_modalities") or []
    caps = Capabilities(
        tools="tools" in params,
        vision="image" in modalities,
        thinking="reasoning" in params or "include_reasoning" in params,
        embeddings=False,
        json_schema="structured_outputs" in params or "response_format" in params,
    )
    return BackendModel(
        id=str(entry.get("id", "")),
        context_window=first_int(entry, "context_length", "top_provider.context_length"),
        capabilities=caps,
        native=entry,
    )


def venice_model(entry: dict[str, Any], profile: Profile) -> BackendModel:
    spec = entry.get("model_spec") or {}
    flags = spec.get("capabilities") or {}
    caps = Capabilities(
        tools=bool(flags.get("supportsFunctionCalling")),
        vision=bool(flags.get("supportsVision")),
        thinking=bool(flags.get("supportsReasoning")),
        embeddings=False,
        json_schema=bool(flags.get("supportsResponseSchema")),
    )
    return BackendModel(
        id=str(entry.get("id", "")),
        context_window=first_int(entry, "context_length", "model_spec.availableContextTokens"),
        capabilities=caps,
        loaded=None if spec.get("offline") is None else not spec.get("offline"),
        native=entry,
    )


def lmstudio_model(entry: dict[str, Any], profile: Profile) -> BackendModel:
    kind = entry.get("type")  # llm | vlm | embeddings (LM Studio's REST API v0)
    if kind in ("llm", "vlm", "embeddings"):
        caps = Capabilities(
            tools=kind != "embeddings",
            vision=kind == "vlm",
            embeddings=kind == "embeddings",
        )
    else:  # a type we do not know: nothing is known
        caps = Capabilities(tools=True, vision=None, embeddings=None)
    state = entry.get("state")
    return BackendModel(
        id=str(entry.get("id", "")),
        context_window=first_int(entry, "loaded_context_length", "max_context_length"),
        capabilities=caps,
        loaded=None if state is None else state == "loaded",
        native=entry,
    )


def parse_model(entry: dict[str, Any], profile: Profile) -> BackendModel:
    parser = profile.parse_model or generic_model
    return parser(entry, profile)
