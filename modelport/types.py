"""Canonical data: requests, messages, stream events, usage.

Every wire format decodes into these types and encodes from them, so they are the
one place where "what a chat is" gets decided. They are frozen msgspec Structs:
cheap to build (a stream makes one event per token) and comparable by value, which
is what the codec round-trip tests rely on.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

import msgspec

from modelport.errors import ProtocolError

Role: TypeAlias = Literal["system", "user", "assistant", "tool"]


class WireFormat(enum.StrEnum):
    """An HTTP API dialect that clients and engines speak."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    RESPONSES = "responses"  # OpenAI's Responses API (/v1/responses)
    OLLAMA = "ollama"  # Ollama's native /api/chat (NDJSON streams)
    OLLAMA_GENERATE = "ollama-generate"  # Ollama's /api/generate: a prompt in, `response` out


class RelayFormat(enum.StrEnum):
    """An engine endpoint that is only ever relayed: no canonical form, no client codec, no
    transcoding (docs/wire-codecs.md, "Relay-only formats"). Its codec is a `RelayCodec`."""

    COMPLETIONS = "completions"  # OpenAI's legacy completions (/v1/completions)


# What a backend can relay: a client dialect, or a relay-only endpoint.
RelayedFormat: TypeAlias = WireFormat | RelayFormat


class RelayContext(msgspec.Struct, frozen=True):
    """What a passthrough carries from the client's HTTP request besides its body: the query
    string (Claude Code's `?beta=true`) and the client's own dialect headers that its codec
    names (`anthropic-beta`, `anthropic-version`). Transcoding drops it: another dialect's
    engine would not understand it."""

    query: str = ""
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    # The request's stop sequences: a relay that fixes an engine's stop_sequence field
    # (llama-server's /v1/messages) names only a sequence the client asked for.
    stop_sequences: tuple[str, ...] = ()


class FinishReason(enum.StrEnum):
    """Why generation stopped, in one vocabulary; the engine's own word goes in raw_reason."""

    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    CANCELLED = "cancelled"
    ERROR = "error"


# ---------------------------------------------------------------------------
# Message parts


class Text(msgspec.Struct, frozen=True, tag="text"):
    text: str


class Image(msgspec.Struct, frozen=True, tag="image"):
    """An image either inline (base64 `data` with its `media_type`) or by `url`."""

    data: str | None = None
    url: str | None = None
    media_type: str | None = None


class ToolCall(msgspec.Struct, frozen=True, tag="tool_call"):
    id: str
    name: str
    arguments: dict[str, Any]


class ToolResult(msgspec.Struct, frozen=True, tag="tool_result"):
    tool_call_id: str
    content: tuple[Text | Image, ...]
    is_error: bool = False


class Thinking(msgspec.Struct, frozen=True, tag="thinking"):
    """Model reasoning; `signature` is Anthropic's opaque proof that must be sent back as is."""

    text: str
    signature: str | None = None


Part: TypeAlias = Text | Image | ToolCall | ToolResult | Thinking


class Message(msgspec.Struct, frozen=True):
    """One turn. A "system" message may stand anywhere in `ChatRequest.messages`: some clients
    (Claude Code) put instructions mid-conversation, and encoders keep them at their place
    where the engine's format allows it."""

    role: Role
    content: tuple[Part, ...]

    @classmethod
    def user(cls, text: str) -> Message:
        return cls("user", (Text(text),))

    @classmethod
    def assistant(cls, text: str) -> Message:
        return cls("assistant", (Text(text),))

    @classmethod
    def system(cls, text: str) -> Message:
        return cls("system", (Text(text),))

    @property
    def text(self) -> str:
        """All text parts joined: what a person would read."""
        return "".join(p.text for p in self.content if isinstance(p, Text))

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(p for p in self.content if isinstance(p, ToolCall))

    @property
    def thinking(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, Thinking))


# ---------------------------------------------------------------------------
# Tools and requests


class Tool(msgspec.Struct, frozen=True):
    name: str
    description: str | None = None
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)


class ToolChoice(msgspec.Struct, frozen=True):
    """auto: the model decides; none: no tools; required: some tool; named: `name` only."""

    mode: Literal["auto", "none", "required", "named"] = "auto"
    name: str | None = None


class Reasoning(msgspec.Struct, frozen=True):
    """A request for thinking, in the words of every dialect; each encoder maps it onto its
    engine's controls (docs/wire-codecs.md, "Reasoning controls").

    - `effort`: how hard to think, the client's own word (none, minimal, low, medium, high,
      xhigh, max); "none" turns thinking off (Anthropic's `disabled`).
    - `budget_tokens`: a thinking budget (Anthropic's `enabled`).
    - `adaptive`: the model decides whether and how much to think, guided by `effort`
      (Anthropic's `adaptive` with `output_config.effort`).
    - `display`: whether an engine that can hide thinking text shows it (Anthropic's
      `summarized` or `omitted`); other engines ignore it.
    """

    effort: str | None = None
    budget_tokens: int | None = None
    adaptive: bool = False
    display: str | None = None


class ChatRequest(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    messages: tuple[Message, ...]
    # The instructions before the conversation (Anthropic's `system`; the OpenAI decoder lifts
    # its system and developer messages here). A system message an Anthropic client puts in
    # the conversation stays in `messages`, at its place.
    system: str | None = None
    tools: tuple[Tool, ...] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] | None = None
    response_format: dict[str, Any] | None = None
    reasoning: Reasoning | None = None
    stream: bool = False
    # Fields we do not model (seed, top_k, venice_parameters, ...) travel untouched.
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


class Usage(msgspec.Struct, frozen=True):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class AnswerTiming(msgspec.Struct, frozen=True, kw_only=True):
    """The wall times of one whole transcoded answer, in nanoseconds, as the gateway measured
    them (Ollama's answers report them; the other dialects have no such fields)."""

    total_ns: int  # from decoding the client's request to the engine's whole answer
    load_ns: int  # from decoding the request until the engine was asked (routing, queue)
    engine_ns: int  # from asking the engine to its whole answer


class ChatResponse(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    model: str
    message: Message
    finish_reason: FinishReason
    usage: Usage | None = None
    raw_reason: str | None = None
    # The stop sequence that ended the answer, when the engine said which one matched
    # (vLLM's `stop_reason`, Anthropic's `stop_sequence`); None for any other stop.
    stop_sequence: str | None = None


# ---------------------------------------------------------------------------
# Stream events: one per wire delta; a stream is a sequence ending in Done.


class TextDelta(msgspec.Struct, frozen=True, tag="text_delta"):
    text: str


class ThinkingDelta(msgspec.Struct, frozen=True, tag="thinking_delta"):
    text: str
    signature: str | None = None


class ToolCallStart(msgspec.Struct, frozen=True, tag="tool_call_start"):
    index: int
    id: str
    name: str


class ToolCallDelta(msgspec.Struct, frozen=True, tag="tool_call_delta"):
    index: int
    arguments: str


class ToolCallEnd(msgspec.Struct, frozen=True, tag="tool_call_end"):
    """The whole call, once its argument fragments have been joined and parsed."""

    index: int
    id: str
    name: str
    arguments: dict[str, Any]


class Done(msgspec.Struct, frozen=True, tag="done"):
    finish_reason: FinishReason
    usage: Usage | None = None
    raw_reason: str | None = None
    stop_sequence: str | None = None  # as on ChatResponse


Event: TypeAlias = TextDelta | ThinkingDelta | ToolCallStart | ToolCallDelta | ToolCallEnd | Done


# ---------------------------------------------------------------------------
# Embeddings


class EmbedRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Texts to embed, or token ids (`tokens`, one sequence per input; `inputs` is then
    empty): OpenAI's API takes either, never both in one request."""

    model: str
    inputs: tuple[str, ...]
    dimensions: int | None = None
    tokens: tuple[tuple[int, ...], ...] = ()


class EmbedResult(msgspec.Struct, frozen=True, kw_only=True):
    vectors: tuple[tuple[float, ...], ...]
    model: str
    usage: Usage | None = None


# ---------------------------------------------------------------------------
# What a backend says about itself


class Capabilities(msgspec.Struct, frozen=True):
    """What a model can do. Each field is a tri-state: True (it can), False (it cannot),
    None (nothing says: vLLM's model list tells nothing of images, llama-server's of
    embeddings). A request that needs an unknown one is let through to the engine."""

    tools: bool | None = False
    vision: bool | None = False
    thinking: bool | None = False
    embeddings: bool | None = False
    json_schema: bool | None = False

    def with_overrides(self, overrides: Mapping[str, bool | None]) -> Capabilities:
        """These capabilities with the fields `overrides` names replaced (config's word)."""
        return msgspec.structs.replace(self, **overrides) if overrides else self


CAPABILITY_NAMES: tuple[str, ...] = Capabilities.__struct_fields__


class BackendModel(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    context_window: int | None = None
    capabilities: Capabilities = Capabilities()
    loaded: bool | None = None
    # The engine's own model entry, for callers that want more than we model.
    native: dict[str, Any] = msgspec.field(default_factory=dict)


class BackendHealth(msgspec.Struct, frozen=True, kw_only=True):
    """`alive`: the engine answers; `ready`: it can serve a request now; `starting`: not
    ready yet but on its way up (a managed engine being installed or loading), so a request
    may wait for it; `last_error` then says what is happening."""

    alive: bool
    ready: bool
    latency_ms: float | None = None
    last_error: str | None = None
    starting: bool = False


def collect(events: list[Event], *, id: str = "", model: str = "") -> ChatResponse:
    """Fold a complete event stream into the response a non-streaming call returns."""
    parts: list[Part] = []
    thinking: list[str] = []
    signature: str | None = None
    text: list[str] = []
    calls: dict[int, ToolCallEnd] = {}
    done: Done | None = None
    for event in events:
        if isinstance(event, TextDelta):
            text.append(event.text)
        elif isinstance(event, ThinkingDelta):
            thinking.append(event.text)
            signature = event.signature or signature
        elif isinstance(event, ToolCallEnd):
            calls[event.index] = event
        elif isinstance(event, Done):
            done = event
    if done is None:
        raise ProtocolError("stream ended without a finish")
    if thinking or signature:
        parts.append(Thinking("".join(thinking), signature))
    if text:
        parts.append(Text("".join(text)))
    parts.extend(ToolCall(c.id, c.name, c.arguments) for _, c in sorted(calls.items()))
    return ChatResponse(
        id=id,
        model=model,
        message=Message("assistant", tuple(parts)),
        finish_reason=done.finish_reason,
        usage=done.usage,
        raw_reason=done.raw_reason,
        stop_sequence=done.stop_sequence,
    )
