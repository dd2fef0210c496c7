"""Engines as data rows: paths, error shapes, reasoning field, quirks (see docs/wire.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Profile:
    kind: str
    default_models: tuple[str, ...]
    #: where /chat/completions, /models and /embeddings live; extra prefixes that alias them
    openai_prefix: str | None = "/v1"
    openai_aliases: tuple[str, ...] = ()
    #: /v1/messages (Anthropic) and /v1/messages/count_tokens
    anthropic: bool = False
    count_tokens: bool = False
    #: /v1/responses (OpenAI's Responses API; see responses_wire)
    responses: bool = False
    #: /v1/completions (OpenAI's legacy completions; see completions_wire)
    completions: bool = False
    #: error style per wire: openai, anthropic, ollama (see errors.body)
    errors: dict[str, str] = field(default_factory=dict)
    #: header carrying the key: "bearer" and/or "x-api-key"
    auth: tuple[str, ...] = ("bearer",)
    #: model names: "any" (single-model server), "listed", "lmstudio", "localai"
    model_policy: str = "listed"
    #: refuse malformed bodies (cloud APIs, vLLM); local engines generate from garbage
    strict: bool = False
    #: 400 when the prompt estimate exceeds the context window (Ollama truncates silently)
    context_check: bool = True
    #: vLLM: max_tokens + prompt must fit as well
    context_counts_max_tokens: bool = False
    #: while loading every route answers 503 (llama-server), else only chat/embeddings
    loading_blocks_all: bool = False
    #: every answer says `Keep-Alive: timeout=5, max=100` (cpp-httplib's), yet the server
    #: closes the connection right after a streamed answer's last chunk (llama-server:
    #: docs/wire.md; its chunked content provider returns false once done, which ends
    #: cpp-httplib's keep-alive loop)
    closes_after_stream: bool = False
    # -- OpenAI chat-completions stream -------------------------------------------------
    reasoning_field: str | None = "reasoning_content"
    role_delta: dict[str, Any] | None = field(
        default_factory=lambda: {"role": "assistant", "content": ""}
    )
    role_in_every_delta: bool = False
    finish_delta: dict[str, Any] = field(default_factory=dict)
    tool_calls_whole: bool = False
    id_prefix: str = "chatcmpl-"
    sse_comment: bytes | None = None
    done_after_error: bool = False
    usage_extra: dict[str, Any] = field(default_factory=dict)
    #: extra top-level fields of every chunk / response
    chunk_extra: dict[str, Any] = field(default_factory=dict)
    #: extra fields on every choice (logprobs, native_finish_reason ...)
    choice_extra: dict[str, Any] = field(default_factory=dict)


PROFILES: dict[str, Profile] = {
    "llamacpp": Profile(
        kind="llamacpp",
        completions=True,
        default_models=("gemma.gguf",),
        openai_aliases=("",),
        anthropic=True,
        count_tokens=True,
        errors={"openai": "llamacpp", "anthropic": "llamacpp"},
        auth=("bearer", "x-api-key"),
        model_policy="any",
        loading_blocks_all=True,
        closes_after_stream=True,
        role_delta={"role": "assistant", "content": None},
        chunk_extra={"system_fingerprint": "b0-unknown"},
        usage_extra={"prompt_tokens_details": {"cached_tokens": 0}},
    ),
    "vllm": Profile(
        kind="vllm",
        completions=True,
        default_models=("Qwen/Qwen3-0.6B",),
        anthropic=True,
        responses=True,
        errors={"openai": "vllm", "anthropic": "vllm-anthropic"},
        strict=True,
        context_counts_max_tokens=True,
        reasoning_field="reasoning",
        finish_delta={"content": ""},
        id_prefix="chatcmpl-",
        done_after_error=True,
        choice_extra={"logprobs": None},
    ),
    "vllm-old": Profile(
        kind="vllm-old",
        completions=True,
        default_models=("Qwen/Qwen3-0.6B",),
        anthropic=False,
        errors={"openai": "vllm-old"},
        strict=True,
        context_counts_max_tokens=True,
        reasoning_field="reasoning_content",
        finish_delta={"content": ""},
        done_after_error=True,
        choice_extra={"logprobs": None},
    ),
    "lmstudio": Profile(
        kind="lmstudio",
        completions=True,
        default_models=("qwen/qwen3-4b",),
        anthropic=True,
        errors={"openai": "lmstudio", "anthropic": "lmstudio-anthropic"},
        model_policy="lmstudio",
        chunk_extra={"system_fingerprint": "qwen/qwen3-4b"},
    ),
    "localai": Profile(
        kind="localai",
        completions=True,
        default_models=("qwen3-0.6b",),
        openai_aliases=("",),
        errors={"openai": "localai"},
        auth=("bearer", "x-api-key"),
        model_policy="localai",
    ),
    "ollama": Profile(
        kind="ollama",
        completions=True,
        default_models=("llama3.2:latest",),
        anthropic=True,
        errors={"openai": "ollama-openai", "anthropic": "ollama-anthropic", "ollama": "ollama"},
        context_check=False,
        reasoning_field="reasoning",
        role_delta=None,
        role_in_every_delta=True,
        finish_delta={"role": "assistant", "content": ""},
        tool_calls_whole=True,
        chunk_extra={"system_fingerprint": "fp_ollama"},
    ),
    "openrouter": Profile(
        kind="openrouter",
        completions=True,
        default_models=("openai/gpt-4o-mini",),
        openai_prefix="/api/v1",
        errors={"openai": "openrouter"},
        strict=True,
        reasoning_field="reasoning",
        role_in_every_delta=True,
        finish_delta={"role": "assistant", "content": ""},
        id_prefix="gen-",
        sse_comment=b": OPENROUTER PROCESSING\n\n",
        chunk_extra={"provider": "FakeProvider"},
        choice_extra={"native_finish_reason": None, "logprobs": None},
        usage_extra={
            "cost": 0.000012,
            "is_byok": False,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    ),
    "venice": Profile(
        kind="venice",
        default_models=("venice-uncensored",),
        openai_prefix="/api/v1",
        errors={"openai": "venice"},
        strict=True,
    ),
    "openai": Profile(
        kind="openai",
        completions=True,
        default_models=("gpt-4o-mini",),
        responses=True,
        errors={"openai": "openai"},
        strict=True,
        reasoning_field=None,  # chat completions never stream OpenAI's reasoning
        role_delta={"role": "assistant", "content": "", "refusal": None},
        chunk_extra={"service_tier": "default", "system_fingerprint": "fp_fake"},
        choice_extra={"logprobs": None},
        usage_extra={
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
    ),
    "anthropic": Profile(
        kind="anthropic",
        default_models=("claude-sonnet-4-5",),
        openai_prefix=None,
        anthropic=True,
        count_tokens=True,
        errors={"anthropic": "anthropic"},
        auth=("x-api-key",),
        strict=True,
        reasoning_field=None,
    ),
}
