"""OpenAI <-> canonical <-> Anthropic: what a transcoding gateway does, checked end to end.

Each test goes through real bytes: encode to one wire, decode, encode to the other, decode.
Where the two formats say a thing differently (raw stop words, parallel_tool_calls, effort
versus budget) the test states the mapping instead of pretending there is none.
"""

from __future__ import annotations

import msgspec
from hypothesis import given

from modelport.types import (
    ChatRequest,
    Done,
    Event,
    FinishReason,
    TextDelta,
    ToolChoice,
    Usage,
)
from modelport.wire import anthropic, openai
from tests.captures import CAPTURES
from tests.strategies import chat_requests, event_streams, normalize

ANTHROPIC_REASONS = {
    FinishReason.STOP: "end_turn",
    FinishReason.LENGTH: "max_tokens",
    FinishReason.TOOL_CALLS: "tool_use",
    FinishReason.CONTENT_FILTER: "refusal",
}


def through_openai(events: list[Event]) -> list[Event]:
    return openai.decode_stream(openai.encode_stream(events, id="chatcmpl-1", model="m"))


def through_anthropic(events: list[Event]) -> list[Event]:
    return anthropic.decode_stream(anthropic.encode_stream(events, id="msg_1", model="m"))


def with_physical_usage(events: list[Event]) -> list[Event]:
    """Every Done gets a usage whose cache reads fit inside the prompt, as real ones do."""
    done = events[-1]
    assert isinstance(done, Done)
    usage = done.usage or Usage()
    usage = msgspec.structs.replace(
        usage, input_tokens=max(usage.input_tokens, usage.cache_read_tokens)
    )
    return [*events[:-1], msgspec.structs.replace(done, usage=usage)]


def meaning(events: list[Event]) -> tuple[object, ...]:
    """What a reader gets: text, thinking, signature, calls, finish; usage compared apart."""
    return tuple(normalize(events)._replace(usage=None))


def without_raw(events: list[Event]) -> list[str]:
    """The events as a multiset, raw stop words aside (each format has its own)."""
    return sorted(
        repr(msgspec.structs.replace(e, raw_reason=None) if isinstance(e, Done) else e)
        for e in events
    )


# ---------------------------------------------------------------------------
# Streams


@given(event_streams(interleave=True))
def test_openai_stream_through_anthropic_keeps_every_event(events: list[Event]) -> None:
    from_openai = through_openai(with_physical_usage(events))
    from_anthropic = through_anthropic(from_openai)
    assert normalize(from_anthropic) == normalize(from_openai)
    assert without_raw(from_anthropic) == without_raw(from_openai)
    done = from_anthropic[-1]
    assert isinstance(done, Done)
    assert done.raw_reason == ANTHROPIC_REASONS[done.finish_reason]
    # and the meaning the OpenAI client's engine sent is what the Anthropic client reads
    assert meaning(from_anthropic) == meaning(events)


@given(event_streams(interleave=False, reasons=ANTHROPIC_REASONS))
def test_anthropic_stream_through_openai_keeps_every_event(events: list[Event]) -> None:
    from_anthropic = through_anthropic(with_physical_usage(events))
    from_openai = through_openai(from_anthropic)
    assert meaning(from_openai) == meaning(from_anthropic)
    assert normalize(from_anthropic) == normalize(with_physical_usage(events))


def test_llamacpp_captures_of_one_prompt_agree() -> None:
    """The same prompt captured on both wires of one llama-server: same text, counts, finish."""
    from_anthropic = anthropic.decode_stream(
        (CAPTURES / "llamacpp_anthropic_stream.sse").read_bytes()
    )
    from_openai = openai.decode_stream((CAPTURES / "llamacpp_openai_stream.sse").read_bytes())
    text = "Say hello.<|im_end|>\n<|im"
    for events in (from_anthropic, from_openai):
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == text
        done = events[-1]
        assert isinstance(done, Done) and done.usage is not None
        assert done.finish_reason == FinishReason.LENGTH
        assert (done.usage.input_tokens, done.usage.output_tokens) == (26, 12)
    # The Anthropic run hit the prompt cache: 5 new tokens + 21 read = 26, as the OpenAI run says.
    assert from_anthropic[-1] == Done(FinishReason.LENGTH, Usage(26, 12, 21), "max_tokens")


def test_anthropic_capture_served_to_an_openai_client() -> None:
    events = anthropic.decode_stream((CAPTURES / "llamacpp_anthropic_stream.sse").read_bytes())
    served = through_openai(events)
    assert [e for e in served if isinstance(e, TextDelta)] == events[:-1]
    done = served[-1]
    assert isinstance(done, Done)
    assert (done.finish_reason, done.raw_reason) == (FinishReason.LENGTH, "length")
    assert done.usage is not None
    assert (done.usage.input_tokens, done.usage.output_tokens) == (26, 12)


def test_openai_capture_served_to_an_anthropic_client() -> None:
    events = openai.decode_stream((CAPTURES / "llamacpp_openai_stream.sse").read_bytes())
    assert through_anthropic(events) == [
        *events[:-1],
        Done(FinishReason.LENGTH, Usage(26, 12, 0), "max_tokens"),
    ]


# ---------------------------------------------------------------------------
# Requests


def anthropic_form(req: ChatRequest) -> ChatRequest:
    """Anthropic keeps parallel_tool_calls inside tool_choice and always has max_tokens."""
    choice, parallel = req.tool_choice, req.parallel_tool_calls
    if choice is None and parallel is not None:
        choice = ToolChoice("auto")
    if choice is not None and choice.mode == "none":
        parallel = None
    max_tokens = req.max_tokens if req.max_tokens is not None else anthropic.DEFAULT_MAX_TOKENS
    return msgspec.structs.replace(
        req, tool_choice=choice, parallel_tool_calls=parallel, max_tokens=max_tokens
    )


def _anthropic_temperature(req: ChatRequest) -> ChatRequest:
    """Anthropic takes 0 to 1 (issue 11): the service refuses more before encoding."""
    if req.temperature is None or req.temperature <= 1:
        return req
    return msgspec.structs.replace(req, temperature=1.0)


@given(chat_requests())
def test_openai_request_to_anthropic(req: ChatRequest) -> None:
    req = msgspec.structs.replace(req, response_format=None)  # json_object has no equivalent
    req = _anthropic_temperature(req)
    from_openai = openai.decode_request(msgspec.json.encode(openai.encode_request(req)))
    wire = msgspec.json.encode(anthropic.encode_request(from_openai))
    from_anthropic = anthropic.decode_request(wire)

    assert from_anthropic.messages == req.messages
    assert from_anthropic.system == req.system
    assert from_anthropic.tools == req.tools
    assert (from_anthropic.stop, from_anthropic.temperature, from_anthropic.top_p) == (
        req.stop,
        req.temperature,
        req.top_p,
    )
    # Effort becomes a thinking budget that Anthropic accepts: at least 1024, under max_tokens.
    budget = from_anthropic.reasoning.budget_tokens if from_anthropic.reasoning else None
    assert from_anthropic.max_tokens is not None
    if req.reasoning is not None and from_anthropic.max_tokens > 1024:
        assert budget is not None
    if budget is not None:
        assert 1024 <= budget < from_anthropic.max_tokens
    expected = anthropic_form(msgspec.structs.replace(from_openai, reasoning=None))
    assert msgspec.structs.replace(from_anthropic, reasoning=None) == expected


@given(chat_requests(reasoning="budget"))
def test_anthropic_request_to_openai(req: ChatRequest) -> None:
    req = anthropic_form(_anthropic_temperature(msgspec.structs.replace(req, response_format=None)))
    from_anthropic = anthropic.decode_request(msgspec.json.encode(anthropic.encode_request(req)))
    assert from_anthropic == req
    from_openai = openai.decode_request(msgspec.json.encode(openai.encode_request(from_anthropic)))
    assert from_openai.messages == req.messages
    assert (from_openai.system, from_openai.tools) == (req.system, req.tools)
    assert (from_openai.tool_choice, from_openai.parallel_tool_calls) == (
        req.tool_choice,
        req.parallel_tool_calls,
    )
    assert (
        from_openai.stop,
        from_openai.temperature,
        from_openai.top_p,
        from_openai.max_tokens,
    ) == (
        req.stop,
        req.temperature,
        req.top_p,
        req.max_tokens,
    )
    assert from_openai.extra == req.extra
    assert (from_openai.reasoning is None) == (req.reasoning is None)
