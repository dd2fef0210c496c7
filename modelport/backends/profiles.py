"""OpenAI-compatible engines as data rows.

A new engine that speaks the OpenAI API is a `Profile` here, not a class: where it
listens, how it says it is healthy, where its key comes from, which fields of its model
list carry the context window and capabilities, and the quirks that set it apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelport.types import BackendModel, Capabilities, WireFormat

ModelParser = Callable[[dict[str, Any], "Profile"], BackendModel]

OPENAI_ONLY = frozenset({WireFormat.OPENAI})
BOTH_FORMATS = frozenset({WireFormat.OPENAI, WireFormat.ANTHROPIC})


@dataclass(frozen=True)
class Profile:
    name: str
    default_url: str
    api_base: str = "/v1"
    # GET path that answers 2xx when ready; None means "list the models instead".
    health_path: str | None = None
    cloud: bool = False
    api_key_env: str | None = None
    formats: frozenset[WireFormat] = OPENAI_ONLY
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(tools=True, embeddings=True)
    )
    headers: dict[str, str] = field(default_factory=dict)
    # Where the model list lives, when not at api_base + "/models" (LM Studio's richer list).
    models_path: str | None = None
    models_query: str = ""
    # llama-server reports the runtime context at /props, not in /v1/models.
    props_path: str | None = None
    # Serves Anthropic's /v1/messages/count_tokens (llama-server does).
    counts_tokens: bool = False
    # OpenAI's newer models refuse max_tokens and want max_completion_tokens.
    max_tokens_field: str = "max_tokens"
    # Known context windows for engines whose model list has none (OpenAI).
    context_table: dict[str, int] = field(default_factory=dict)
    parse_model: ModelParser | None = None
    description: str = ""

    @property
    def key_required(self) -> bool:
        return self.cloud


def first_int(entry: dict[str, Any], *paths: str) -> int | None:
    """The first positive integer found at any of the dotted paths."""
    for path in paths:
        value: Any = entry
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _generic_model(entry: dict[str, Any], profile: Profile) -> BackendModel:
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
        id=model_id, context_window=context, capabilities=profile.capabilities, native=entry
    )


def _context_from_table(model_id: str, table: dict[str, int]) -> int | None:
    """Longest table prefix that the model id starts with (gpt-4o-2024-08-06 -> gpt-4o)."""
    best = ""
    for prefix in table:
        if model_id.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return table.get(best) if best else None


def _openrouter_model(entry: dict[str, Any], profile: Profile) -> BackendModel:
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


def _venice_model(entry: dict[str, Any], profile: Profile) -> BackendModel:
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


def _lmstudio_model(entry: dict[str, Any], profile: Profile) -> BackendModel:
    kind = entry.get("type")
    caps = Capabilities(
        tools=kind != "embeddings",
        vision=kind == "vlm",
        embeddings=kind == "embeddings",
    )
    state = entry.get("state")
    return BackendModel(
        id=str(entry.get("id", "")),
        context_window=first_int(entry, "loaded_context_length", "max_context_length"),
        capabilities=caps,
        loaded=None if state is None else state == "loaded",
        native=entry,
    )


_OPENAI_CONTEXT = {
    "gpt-3.5-turbo": 16_385,
    "gpt-4": 8_192,
    "gpt-4-turbo": 128_000,
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-5": 400_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    "text-embedding-3-small": 8_191,
    "text-embedding-3-large": 8_191,
}

_LOCAL = Capabilities(tools=True, embeddings=True)

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in [
        Profile(
            "llamacpp",
            "http://127.0.0.1:8080",
            health_path="/health",
            formats=BOTH_FORMATS,
            capabilities=Capabilities(tools=True, thinking=True, embeddings=True),
            props_path="/props",
            counts_tokens=True,
            description="llama.cpp llama-server",
        ),
        Profile(
            "vllm",
            "http://127.0.0.1:8000",
            health_path="/health",
            formats=BOTH_FORMATS,
            capabilities=Capabilities(tools=True, thinking=True, embeddings=True, json_schema=True),
            description="vLLM",
        ),
        Profile(
            "lmstudio",
            "http://127.0.0.1:1234",
            formats=BOTH_FORMATS,
            capabilities=Capabilities(tools=True, thinking=True, embeddings=True, json_schema=True),
            models_path="/api/v0/models",
            parse_model=_lmstudio_model,
            description="LM Studio (no health route: its model list is the probe)",
        ),
        Profile(
            "localai",
            "http://127.0.0.1:8080",
            health_path="/readyz",
            capabilities=_LOCAL,
            description="LocalAI",
        ),
        Profile(
            "ollama",
            "http://127.0.0.1:11434",
            health_path="/",
            formats=BOTH_FORMATS,
            capabilities=Capabilities(tools=True, thinking=True, vision=True, embeddings=True),
            description="Ollama through its OpenAI-compatible /v1",
        ),
        Profile(
            "openai",
            "https://api.openai.com",
            cloud=True,
            api_key_env="OPENAI_API_KEY",
            capabilities=Capabilities(
                tools=True, vision=True, thinking=True, embeddings=True, json_schema=True
            ),
            max_tokens_field="max_completion_tokens",
            context_table=_OPENAI_CONTEXT,
            description="OpenAI",
        ),
        Profile(
            "openrouter",
            "https://openrouter.ai",
            api_base="/api/v1",
            cloud=True,
            api_key_env="OPENROUTER_API_KEY",
            capabilities=Capabilities(tools=True, vision=True, thinking=True),
            headers={
                "HTTP-Referer": "https://github.com/modelport/modelport",
                "X-OpenRouter-Title": "modelport",
                "X-Title": "modelport",
            },
            parse_model=_openrouter_model,
            description="OpenRouter",
        ),
        Profile(
            "venice",
            "https://api.venice.ai",
            api_base="/api/v1",
            cloud=True,
            api_key_env="VENICE_API_KEY",
            capabilities=Capabilities(tools=True, vision=True, thinking=True, embeddings=True),
            models_query="?type=text",
            parse_model=_venice_model,
            description="Venice",
        ),
        Profile(
            "openai-compatible",
            "http://127.0.0.1:8000",
            api_key_env="OPENAI_COMPATIBLE_API_KEY",
            capabilities=_LOCAL,
            description="any other OpenAI-compatible server",
        ),
    ]
}


def parse_model(entry: dict[str, Any], profile: Profile) -> BackendModel:
    parser = profile.parse_model or _generic_model
    return parser(entry, profile)
