"""Hypothesis strategies for canonical requests, responses and event streams.

Every codec's round-trip property draws from here, so what these strategies make is the
"canonical form" the codecs promise to keep:

- `ChatRequest.system` carries the system prompt; no message has role "system".
- user messages hold Text and Image parts; assistant messages hold an optional Thinking,
  an optional Text, then ToolCalls, in that order; a role "tool" message holds only
  ToolResults and follows the assistant message whose calls it answers.
- texts are non-empty; images are inline (data + media_type) or by http(s) url.
- event streams end with every ToolCallEnd (index order) right before one Done; argument
  fragments join to the JSON of the final arguments.

Import in a test as `from tests.strategies import chat_requests, ...`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any, Literal, NamedTuple

import msgspec
from hypothesis import strategies as st

from modelport.types import (
    ChatRequest,
    ChatResponse,
    Done,
    Event,
    FinishReason,
    Image,
    Message,
    Part,
    Reasoning,
    Text,
    TextDelta,
    Thinking,
    ThinkingDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolChoice,
    ToolResult,
    Usage,
)

# The engine word each finish reason carries on the OpenAI wire.
OPENAI_REASONS: Mapping[FinishReason, str] = {
    FinishReason.STOP: "stop",
    FinishReason.LENGTH: "length",
    FinishReason.TOOL_CALLS: "tool_calls",
    FinishReason.CONTENT_FILTER: "content_filter",
}

# Keys no codec models, so they must travel in ChatRequest.extra.
EXTRA_KEYS = ("seed", "top_k", "min_p", "repeat_penalty", "venice_parameters", "x_trace")
# Values the dialects take for them (issue 11: typed and ranged fields are checked).
_EXTRA_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "seed": st.integers(-(2**53), 2**53),
    "top_k": st.integers(0, 100),
    "min_p": st.floats(0, 1),
    "repeat_penalty": st.floats(0, 2),
}

# ---------------------------------------------------------------------------
# Leaves


def texts(min_size: int = 1, max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(min_size=min_size, max_size=max_size)


def names() -> st.SearchStrategy[str]:
    return st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)


def call_ids() -> st.SearchStrategy[str]:
    return st.from_regex(r"(call|toolu)_[0-9a-f]{4,24}", fullmatch=True)


def json_values() -> st.SearchStrategy[Any]:
    """Values that survive a JSON round trip unchanged (lists, not tuples; finite floats)."""
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(-(2**53), 2**53)
        | st.floats(allow_nan=False, allow_infinity=False)
        | texts(0, 12)
    )
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts(0, 8), inner, max_size=3),
        max_leaves=8,
    )


@st.composite
def _extras(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(EXTRA_KEYS), unique=True, max_size=3))
    return {k: draw(_EXTRA_VALUES.get(k, json_values())) for k in keys}


def json_objects() -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(texts(0, 10), json_values(), max_size=4)


def usages() -> st.SearchStrategy[Usage]:
    count = st.integers(0, 1_000_000)
    return st.builds(Usage, count, count, count, count)


def images() -> st.SearchStrategy[Image]:
    inline = st.builds(
        lambda data, kind: Image(data=data, media_type=kind),
        st.from_regex(r"[A-Za-z0-9+/]{4,40}={0,2}", fullmatch=True),
        st.sampled_from(["image/png", "image/jpeg", "image/webp", "image/gif"]),
    )
    linked = st.builds(
        lambda path: Image(url="https://example.com/" + path),
        st.from_regex(r"[a-z0-9]{1,12}\.(png|jpg)", fullmatch=True),
    )
    return inline | linked


# ---------------------------------------------------------------------------
# Messages and requests


def user_messages() -> st.SearchStrategy[Message]:
    parts = st.lists(st.builds(Text, texts()) | images(), min_size=1, max_size=3)
    return parts.map(lambda ps: Message("user", tuple(ps)))


def tool_calls(id: str | None = None) -> st.SearchStrategy[ToolCall]:
    return st.builds(ToolCall, st.just(id) if id else call_ids(), names(), json_objects())


@st.composite
def assistant_messages(draw: st.DrawFn, *, signatures: bool = True) -> Message:
    parts: list[Part] = []
    if draw(st.booleans()):
        signature = draw(st.none() | texts(1, 20)) if signatures else None
        parts.append(Thinking(draw(texts()), signature))
    if draw(st.booleans()):
        parts.append(Text(draw(texts())))
    ids = draw(st.lists(call_ids(), max_size=3, unique=True))
    parts.extend(draw(tool_calls(i)) for i in ids)
    if not parts:
        parts.append(Text(draw(texts())))
    return Message("assistant", tuple(parts))


@st.composite
def tool_messages(draw: st.DrawFn, calls: Sequence[ToolCall], *, errors: bool = False) -> Message:
    results = []
    for call in calls:
        content = draw(st.lists(st.builds(Text, texts()) | images(), min_size=1, max_size=2))
        is_error = draw(st.booleans()) if errors else False
        results.append(ToolResult(call.id, tuple(content), is_error))
    return Message("tool", tuple(results))


@st.composite
def conversations(
    draw: st.DrawFn, *, signatures: bool = True, tool_errors: bool = False
) -> tuple[Message, ...]:
    """user, then turns of assistant (+ tool results when it called tools) and user."""
    messages = [draw(user_messages())]
    for _ in range(draw(st.integers(0, 3))):
        reply = draw(assistant_messages(signatures=signatures))
        messages.append(reply)
        if reply.tool_calls:
            messages.append(draw(tool_messages(reply.tool_calls, errors=tool_errors)))
        if draw(st.booleans()):
            messages.append(draw(user_messages()))
    return tuple(messages)


def tools() -> st.SearchStrategy[Tool]:
    schema = st.fixed_dictionaries(
        {"type": st.just("object"), "properties": st.dictionaries(names(), st.just({}))}
    )
    return st.builds(Tool, names(), st.none() | texts(), st.just({}) | schema)


def tool_choices() -> st.SearchStrategy[ToolChoice]:
    plain = st.sampled_from(["auto", "none", "required"]).map(lambda m: ToolChoice(m))
    return plain | names().map(lambda n: ToolChoice("named", n))


def reasonings(kind: Literal["effort", "budget"]) -> st.SearchStrategy[Reasoning]:
    if kind == "budget":
        return st.integers(1024, 64_000).map(lambda b: Reasoning(budget_tokens=b))
    return st.sampled_from(["minimal", "low", "medium", "high"]).map(lambda e: Reasoning(effort=e))


@st.composite
def chat_requests(
    draw: st.DrawFn,
    *,
    signatures: bool = True,
    tool_errors: bool = False,
    reasoning: Literal["effort", "budget"] = "effort",
) -> ChatRequest:
    """Canonical requests. `tool_errors` draws ToolResult.is_error (OpenAI cannot carry it)."""
    return ChatRequest(
        model=draw(texts(1, 30)),
        messages=draw(conversations(signatures=signatures, tool_errors=tool_errors)),
        system=draw(st.none() | texts()),
        tools=draw(st.none() | st.lists(tools(), min_size=1, max_size=3).map(tuple)),
        tool_choice=draw(st.none() | tool_choices()),
        parallel_tool_calls=draw(st.none() | st.booleans()),
        max_tokens=draw(st.none() | st.integers(1, 100_000)),
        temperature=draw(st.none() | st.floats(0, 2)),
        top_p=draw(st.none() | st.floats(0, 1)),
        stop=draw(st.none() | st.lists(texts(1, 8), min_size=1, max_size=4).map(tuple)),
        response_format=draw(st.none() | st.just({"type": "json_object"})),
        reasoning=draw(st.none() | reasonings(reasoning)),
        stream=draw(st.booleans()),
        extra=draw(_extras()),
    )


# ---------------------------------------------------------------------------
# Responses


@st.composite
def chat_responses(
    draw: st.DrawFn,
    *,
    reasons: Mapping[FinishReason, str] = OPENAI_REASONS,
    signatures: bool = True,
) -> ChatResponse:
    """Canonical responses; raw_reason is the wire word `reasons` gives the finish reason."""
    reason = draw(st.sampled_from(sorted(reasons)))
    return ChatResponse(
        id=draw(st.from_regex(r"(chatcmpl|msg)-[A-Za-z0-9]{1,24}", fullmatch=True)),
        model=draw(texts(1, 30)),
        message=draw(assistant_messages(signatures=signatures)),
        finish_reason=reason,
        usage=draw(st.none() | usages()),
        raw_reason=reasons[reason],
    )


# ---------------------------------------------------------------------------
# Event streams


@st.composite
def fragments(draw: st.DrawFn, whole: str) -> list[str]:
    """`whole` cut at random points into non-empty pieces."""
    cuts = draw(st.lists(st.integers(1, max(1, len(whole) - 1)), max_size=4, unique=True))
    bounds = [0, *sorted(c for c in cuts if c < len(whole)), len(whole)]
    return [whole[a:b] for a, b in pairwise(bounds) if b > a]


@st.composite
def _call_events(draw: st.DrawFn, index: int, id: str) -> tuple[list[Event], ToolCallEnd]:
    call = draw(tool_calls(id))
    pieces: list[str] = []
    if call.arguments or draw(st.booleans()):
        pieces = draw(fragments(msgspec.json.encode(call.arguments).decode()))
    opening: list[Event] = [ToolCallStart(index, call.id, call.name)]
    deltas: list[Event] = [ToolCallDelta(index, p) for p in pieces]
    return opening + deltas, ToolCallEnd(index, call.id, call.name, call.arguments)


@st.composite
def event_streams(
    draw: st.DrawFn,
    *,
    reasons: Mapping[FinishReason, str] = OPENAI_REASONS,
    interleave: bool = True,
    signatures: bool = True,
    max_calls: int = 3,
) -> list[Event]:
    """Canonical streams. With `interleave`, thinking, text and each call's fragments are
    merged in random order (parallel calls); without, they come one block after another."""
    thinking: list[Event] = [ThinkingDelta(t) for t in draw(st.lists(texts(), max_size=3))]
    if thinking and signatures and draw(st.booleans()):
        thinking.append(ThinkingDelta("", draw(texts(1, 20))))
    text: list[Event] = [TextDelta(t) for t in draw(st.lists(texts(), max_size=4))]
    queues = [thinking, text]
    ends: list[ToolCallEnd] = []
    ids = draw(st.lists(call_ids(), max_size=max_calls, unique=True))
    for index, id in enumerate(ids):
        events, end = draw(_call_events(index, id))
        queues.append(events)
        ends.append(end)
    body = _merge(draw, queues) if interleave else [e for q in queues for e in q]
    body, ends = _renumber(body, ends)
    reason = draw(st.sampled_from(sorted(reasons)))
    done = Done(reason, draw(st.none() | usages()), reasons[reason])
    return [*body, *ends, done]


def _renumber(body: list[Event], ends: list[ToolCallEnd]) -> tuple[list[Event], list[ToolCallEnd]]:
    """Number calls in order of first appearance, as OpenAI streams do."""
    order = [e.index for e in body if isinstance(e, ToolCallStart)]
    new = {old: i for i, old in enumerate(order)}

    def fix(event: Event) -> Event:
        if isinstance(event, ToolCallStart | ToolCallDelta | ToolCallEnd):
            return msgspec.structs.replace(event, index=new[event.index])
        return event

    renumbered = sorted((fix(e) for e in ends), key=lambda e: e.index)
    return [fix(e) for e in body], [e for e in renumbered if isinstance(e, ToolCallEnd)]


def _merge(draw: st.DrawFn, queues: list[list[Event]]) -> list[Event]:
    """A random interleaving that keeps the order inside each queue."""
    pending = [list(q) for q in queues if q]
    merged: list[Event] = []
    while pending:
        queue = pending[draw(st.integers(0, len(pending) - 1))]
        merged.append(queue.pop(0))
        pending = [q for q in pending if q]
    return merged


# ---------------------------------------------------------------------------
# Comparing streams across formats


class Summary(NamedTuple):
    """What a stream means, whatever the framing: compare these across wire formats."""

    text: str
    thinking: str
    signature: str | None
    tool_calls: list[tuple[str, str, dict[str, Any]]]
    finish_reason: FinishReason | None
    usage: Usage | None


def normalize(events: Sequence[Event]) -> Summary:
    """Reduce a stream to its meaning: joined text and thinking, whole calls by index, finish."""
    text: list[str] = []
    thinking: list[str] = []
    signature: str | None = None
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
    return Summary(
        text="".join(text),
        thinking="".join(thinking),
        signature=signature,
        tool_calls=[(c.id, c.name, c.arguments) for _, c in sorted(calls.items())],
        finish_reason=done.finish_reason if done else None,
        usage=done.usage if done else None,
    )
