"""Every backend kind as a data row.

A new engine that speaks the OpenAI API is a `Profile` here, not a class: where it
listens, how it says it is healthy, where its key comes from, which fields of its model
list carry the context window and capabilities (its parser, in model_lists.py), and the
quirks that set it apart.

`KINDS` is the one table of every kind `connect` accepts: the OpenAI-compatible profiles
and the native adapters (Ollama's /api, Anthropic, managed, mock), each with what the
config and the gateway need to know (default URL, key, cloud or local, allowed config
fields, the factory that builds it). Nothing here imports aiohttp: `modelport config
check` reads this table and answers at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from modelport.backends.model_lists import (
    ModelParser,
    lmstudio_model,
    openrouter_model,
    venice_model,
)
from modelport.backends.model_lists import first_int as first_int  # public: re-exported
from modelport.backends.model_lists import parse_model as parse_model  # public: re-exported
from modelport.types import Capabilities, RelayedFormat, RelayFormat, WireFormat

if TYPE_CHECKING:
    from modelport.backends.base import Backend

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
    # Serves OpenAI's Responses API at api_base + "/responses" (then Responses clients are
    # relayed, not transcoded). Off unless the engine is known to have it in every version
    # a user may run: Ollama and llama-server added it late, so they stay transcoded.
    responses: bool = False
    # Serves OpenAI's legacy completions at api_base + "/completions" (relayed only, never
    # transcoded: RelayFormat.COMPLETIONS). On for the engines whose source or docs say so.
    completions: bool = False
    # Request fields an engine's endpoint (per relayed format) is known to drop in silence or
    # refuse, with why. A relayed body that sets one is Unsupported before any I/O: the
    # candidate loop tries the next engine, and a 400 names it when none honours it.
    drops: Mapping[RelayedFormat, Mapping[str, str]] = field(default_factory=dict)
    # Embeddings take token ids (`input: [[9906, 1917]]`) as well as text.
    embed_token_ids: bool = True
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
    # Thinking controls also go in `chat_template_kwargs` (enable_thinking, reasoning_effort):
    # the chat templates of llama-server and vLLM read the switch there, not in reasoning_effort.
    thinking_template_kwargs: bool = False
    # Earlier thinking goes back in assistant messages (`reasoning_content`, and our
    # `reasoning_signature`); OpenAI refuses message fields it does not know.
    reasoning_history: bool = True
    # Quirks of the engine's /v1/messages (docs/wire.md, llama-server): its message_delta
    # carries output_tokens only (the relay completes the usage there); it answers a matched
    # stop sequence with stop_reason "end_turn" (the relay pairs the two fields as Anthropic
    # does); it ignores `output_config.format` (json_schema requests are transcoded to Chat
    # Completions, where the engine honours `response_format`).
    messages_partial_usage: bool = False
    messages_stop_sequence_quirk: bool = False
    messages_ignores_output_format: bool = False
    # Known context windows for engines whose model list has none (OpenAI).
    context_table: dict[str, int] = field(default_factory=dict)
    parse_model: ModelParser | None = None
    description: str = ""

    @property
    def key_required(self) -> bool:
        return self.cloud

    @property
    def relay_formats(self) -> frozenset[RelayedFormat]:
        """Every format a backend of this profile relays: its formats, Responses when the
        `responses` column says the engine serves it, legacy completions when `completions`
        does."""
        formats: set[RelayedFormat] = set(self.formats)
        if self.responses:
            formats.add(WireFormat.RESPONSES)
        if self.completions:
            formats.add(RelayFormat.COMPLETIONS)
        return frozenset(formats)


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

# Servers whose model list says nothing of images or embeddings (LocalAI, vLLM, any other
# OpenAI-compatible server): unknown, so a request that needs them reaches the engine, and
# its refusal becomes a clear 400 (docs/wire.md). Config can say what they are.
_LOCAL = Capabilities(tools=True, vision=None, embeddings=None)

# Legacy completions fields each engine drops or refuses (docs/wire-codecs.md, "Legacy
# completions"). llama-server b11434 measured: `suffix` and `echo` change nothing (same
# prompt_tokens, same text); older builds refused it ("Unsupported param: suffix").
_LLAMA_SERVER_DROPS = {
    "suffix": "llama-server's /v1/completions ignores it (no fill-in-the-middle there)",
    "echo": "llama-server's /v1/completions does not echo the prompt",
}
# vLLM's renderer: `if request.suffix is not None: "suffix is not currently supported"`.
_VLLM_DROPS = {"suffix": "vLLM's /v1/completions refuses it (no fill-in-the-middle there)"}
# Ollama's openai.CompletionRequest has no `echo` member: Go's JSON decoder drops it.
_OLLAMA_DROPS = {"echo": "Ollama's /v1/completions does not echo the prompt"}

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in [
        Profile(
            "llamacpp",
            "http://127.0.0.1:8080",
            health_path="/health",
            formats=BOTH_FORMATS,
            # Vision from /props `modalities` (or /v1/models `input_modalities`); nothing
            # says whether it was started with --embeddings.
            capabilities=Capabilities(tools=True, thinking=True, vision=None, embeddings=None),
            props_path="/props",
            counts_tokens=True,
            thinking_template_kwargs=True,
            completions=True,
            drops={RelayFormat.COMPLETIONS: _LLAMA_SERVER_DROPS},
            messages_partial_usage=True,
            messages_stop_sequence_quirk=True,
            messages_ignores_output_format=True,
            description="llama.cpp llama-server",
        ),
        Profile(
            "vllm",
            "http://127.0.0.1:8000",
            health_path="/health",
            formats=BOTH_FORMATS,
            responses=True,
            # Its /v1/models (ModelCard: id, root, parent, max_model_len) says nothing of
            # modalities or pooling: a text-only model refuses images with a 400.
            capabilities=Capabilities(
                tools=True, thinking=True, vision=None, embeddings=None, json_schema=True
            ),
            thinking_template_kwargs=True,
            completions=True,
            drops={RelayFormat.COMPLETIONS: _VLLM_DROPS},
            description="vLLM",
        ),
        Profile(
            "lmstudio",
            "http://127.0.0.1:1234",
            formats=BOTH_FORMATS,
            capabilities=Capabilities(tools=True, thinking=True, embeddings=True, json_schema=True),
            models_path="/api/v0/models",
            parse_model=lmstudio_model,
            completions=True,
            description="LM Studio (no health route: its model list is the probe)",
        ),
        Profile(
            "localai",
            "http://127.0.0.1:8080",
            health_path="/readyz",
            capabilities=_LOCAL,
            completions=True,
            description="LocalAI",
        ),
        Profile(
            "ollama",
            "http://127.0.0.1:11434",
            health_path="/",
            formats=BOTH_FORMATS,
            capabilities=Capabilities(tools=True, thinking=True, vision=True, embeddings=True),
            completions=True,
            drops={RelayFormat.COMPLETIONS: _OLLAMA_DROPS},
            embed_token_ids=False,
            description="Ollama through its OpenAI-compatible /v1",
        ),
        Profile(
            "openai",
            "https://api.openai.com",
            cloud=True,
            api_key_env="OPENAI_API_KEY",
            responses=True,
            capabilities=Capabilities(
                tools=True, vision=True, thinking=True, embeddings=True, json_schema=True
            ),
            max_tokens_field="max_completion_tokens",
            reasoning_history=False,
            context_table=_OPENAI_CONTEXT,
            completions=True,
            description="OpenAI",
        ),
        Profile(
            "openrouter",
            "https://openrouter.ai",
            api_base="/api/v1",
            cloud=True,
            api_key_env="OPENROUTER_API_KEY",
            responses=True,
            capabilities=Capabilities(tools=True, vision=True, thinking=True),
            headers={
                "HTTP-Referer": "https://github.com/modelport/modelport",
                "X-OpenRouter-Title": "modelport",
                "X-Title": "modelport",
            },
            parse_model=openrouter_model,
            completions=True,
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
            parse_model=venice_model,
            description="Venice",
        ),
        Profile(
            "openai-compatible",
            "http://127.0.0.1:8000",
            api_key_env="OPENAI_COMPATIBLE_API_KEY",
            capabilities=_LOCAL,
            completions=True,
            description="any other OpenAI-compatible server",
        ),
    ]
}


# ---------------------------------------------------------------------------
# Every kind: one row each

# Where engines listen by default: Ollama, llama-server (old and new default), vLLM,
# LM Studio; LocalAI shares 8080. Discovery probes these.
DISCOVERY_PORTS = (11434, 8080, 9931, 8000, 1234)

# (kind, url or None, api_key or None, name or None) -> a backend. Imports happen on
# call, so reading the table costs nothing.
Factory = Callable[[str, "str | None", "str | None", "str | None"], "Backend"]

# Config fields every kind takes; `Kind.fields` adds or removes from these.
COMMON_FIELDS = frozenset(
    {
        "kind",
        "name",
        "url",
        "api_key_env",
        "models",
        "max_concurrent",
        "max_queue",
        "queue_timeout_s",
        "first_byte_timeout_s",
        "priority",
        # What its models can do, over what the engine reports: backend-wide and per model.
        "capabilities",
        "model_capabilities",
    }
)
# Knobs of an engine modelport runs itself.
ENGINE_FIELDS = frozenset(
    {
        "model",
        "alias",
        "llama_server",
        "ctx_size",
        "threads",
        "parallel",
        "chat_template",
        "idle_unload_s",
        "embeddings",
        "args",
    }
)

# llama-server's spellings of the flag that turns /v1/embeddings on (`--help`, b11434).
EMBEDDINGS_FLAGS = ("--embedding", "--embeddings")


@dataclass(frozen=True)
class Kind:
    """One kind of backend, as `connect`, the config and the gateway see it."""

    name: str
    build: Factory
    # None: nothing to dial (in-process, or a port picked at start); `no_url` says which.
    default_url: str | None
    no_url: str = ""
    # A variable that moves the default URL, as the engine's own client reads it.
    url_env: str | None = None
    # Cloud kinds need a key; with `cloud_at_default_only`, only at the default host
    # (engines speak Anthropic's API too).
    cloud: bool = False
    cloud_at_default_only: bool = False
    # The variable the backend reads when it is given no key.
    api_key_env: str | None = None
    fields: frozenset[str] = COMMON_FIELDS
    # Why a field this kind does not take is refused, when there is more to say.
    refused: Mapping[str, str] = field(default_factory=dict)
    # modelport starts the engine itself, from the config's engine fields.
    runs_engine: bool = False
    profile: Profile | None = None
    description: str = ""

    def is_cloud(self, url: str | None) -> bool:
        if not self.cloud:
            return False
        if not self.cloud_at_default_only or url is None:
            return True
        return _hostname(url) == _hostname(self.default_url)


def _hostname(url: str | None) -> str | None:
    try:
        return urlsplit(url or "").hostname
    except ValueError:
        return None


def _openai_compatible(kind: str, url: str | None, key: str | None, name: str | None) -> Backend:
    from modelport.backends.openai_compat import OpenAICompatBackend

    return OpenAICompatBackend(kind, url, api_key=key, name=name)


def _ollama(kind: str, url: str | None, key: str | None, name: str | None) -> Backend:
    from modelport.backends.ollama import OllamaBackend

    return OllamaBackend(url, api_key=key, name=name)


def _anthropic(kind: str, url: str | None, key: str | None, name: str | None) -> Backend:
    from modelport.backends.anthropic import AnthropicBackend

    return AnthropicBackend(url, api_key=key, name=name)


def _managed(kind: str, url: str | None, key: str | None, name: str | None) -> Backend:
    """ "managed[:PATH]": the installed llama-server on the GGUF at PATH (else the bundled one)."""
    from modelport.backends.managed import bundled

    return bundled(url)


def _mock(kind: str, url: str | None, key: str | None, name: str | None) -> Backend:
    from modelport.backends.mock import MockBackend

    return MockBackend(name=name or "mock")


def _profile_kind(profile: Profile) -> Kind:
    return Kind(
        name=profile.name,
        build=_openai_compatible,
        default_url=profile.default_url,
        cloud=profile.cloud,
        api_key_env=profile.api_key_env,
        profile=profile,
        description=profile.description,
    )


_NATIVE = [
    Kind(
        "ollama",
        _ollama,
        PROFILES["ollama"].default_url,
        url_env="OLLAMA_HOST",
        profile=PROFILES["ollama"],  # its /v1, for relaying
        description="Ollama through its native /api",
    ),
    Kind(
        "anthropic",
        _anthropic,
        "https://api.anthropic.com",
        cloud=True,
        cloud_at_default_only=True,
        api_key_env="ANTHROPIC_API_KEY",
        description="Anthropic's Messages API",
    ),
    Kind(
        "managed",
        _managed,
        None,
        no_url="a free loopback port, chosen when it starts",
        fields=(COMMON_FIELDS - {"url"}) | ENGINE_FIELDS,
        refused={"url": "a managed engine picks its own port; remove url"},
        runs_engine=True,
        description="a llama-server modelport runs itself",
    ),
    Kind(
        "mock",
        _mock,
        None,
        no_url="none (scripted in-process backend)",
        description="scripted in-process backend, for tests",
    ),
]

KINDS: dict[str, Kind] = {
    **{name: _profile_kind(profile) for name, profile in PROFILES.items()},
    **{kind.name: kind for kind in _NATIVE},
}
