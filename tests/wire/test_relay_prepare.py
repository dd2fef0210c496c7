"""Codec.prepare_relay: each dialect's relay facts are the codec's data, not a backend's branch."""

from __future__ import annotations

import json
import sys
from types import FrameType

import pytest

from modelport.errors import InvalidRequest
from modelport.types import RelayFormat, WireFormat
from modelport.wire import anthropic, codec_for, relay_codec_for
from modelport.wire.completions import request as completions


def _body(**fields: object) -> bytes:
    return json.dumps({"model": "m", "messages": [], **fields}).encode()


def test_relay_paths_sit_below_the_api_base() -> None:
    assert codec_for(WireFormat.OPENAI).relay_path == "/chat/completions"
    assert codec_for(WireFormat.ANTHROPIC).relay_path == "/messages"


def test_openai_stream_asks_for_usage_and_drops_its_chunk() -> None:
    prepared = codec_for(WireFormat.OPENAI).prepare_relay(_body(stream=True), api_key="k")
    assert prepared.stream and prepared.drop_usage_chunk
    assert json.loads(prepared.body)["stream_options"] == {"include_usage": True}
    assert dict(prepared.headers) == {}  # the key travels as the backend's bearer


@pytest.mark.parametrize(
    "fields", [{"stream": False}, {"stream": True, "stream_options": {"include_usage": True}}]
)
def test_openai_body_untouched_when_nothing_is_missing(fields: dict[str, object]) -> None:
    body = _body(**fields)
    prepared = codec_for(WireFormat.OPENAI).prepare_relay(body)
    assert prepared.body is body and not prepared.drop_usage_chunk


def test_anthropic_body_untouched_with_version_and_key_headers() -> None:
    body = _body(stream=True)
    prepared = codec_for(WireFormat.ANTHROPIC).prepare_relay(body, api_key="sk-ant")
    assert prepared.body is body and prepared.stream and not prepared.drop_usage_chunk
    assert dict(prepared.headers) == {
        "anthropic-version": anthropic.ANTHROPIC_VERSION,
        "x-api-key": "sk-ant",
    }
    no_key = codec_for(WireFormat.ANTHROPIC).prepare_relay(body)
    assert "x-api-key" not in no_key.headers


@pytest.mark.parametrize("format", list(WireFormat))
@pytest.mark.parametrize(
    ("body", "wording"), [(b"{nope", "not valid JSON"), (b"[1]", "must be a JSON object")]
)
def test_bad_bodies_are_invalid_requests(format: WireFormat, body: bytes, wording: str) -> None:
    with pytest.raises(InvalidRequest, match=wording):
        codec_for(format).prepare_relay(body)


@pytest.mark.parametrize("fmt", [WireFormat.OPENAI, WireFormat.ANTHROPIC, WireFormat.OLLAMA])
def test_a_passthrough_body_is_walked_for_nesting_once(fmt: WireFormat) -> None:
    """The hot path (docs/hot-path.md): decode_request walks the body (load_body), the relay
    that follows only parses it. Counted with sys.setprofile, nothing patched."""
    codec = codec_for(fmt)
    body = _body(stream=True, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    walks: list[str] = []

    def count(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code.co_name == "nests_deeper":
            walks.append(frame.f_code.co_filename)

    sys.setprofile(count)
    try:
        codec.decode_request(body)
        codec.prepare_relay(body)
    finally:
        sys.setprofile(None)
    assert len(walks) == 1


def test_prepare_relay_still_refuses_a_body_that_is_no_object() -> None:
    with pytest.raises(InvalidRequest, match="must be a JSON object"):
        codec_for(WireFormat.ANTHROPIC).prepare_relay(b"[1, 2]")
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        codec_for(WireFormat.OPENAI).prepare_relay(b"{")


def test_a_relayed_completions_body_is_walked_for_nesting_once() -> None:
    body = json.dumps({"model": "m", "prompt": "hi", "stream": True}).encode()
    walks: list[str] = []

    def count(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code.co_name == "nests_deeper":
            walks.append(frame.f_code.co_filename)

    sys.setprofile(count)
    try:
        completions.check_request(body)  # what CompletionsCall does first
        relay_codec_for(RelayFormat.COMPLETIONS).prepare_relay(body)
    finally:
        sys.setprofile(None)
    assert len(walks) == 1
