"""The meter's fix-ups of llama-server's /v1/messages, on bytes the real server sent
(docs/captures/llamacpp_anthropic_*): only message_delta (and a whole answer) is rewritten,
every other frame goes on byte for byte."""

from __future__ import annotations

import json

from modelport.types import WireFormat
from modelport.wire.anthropic.relay_fixup import MessagesFixup
from modelport.wire.meter import Meter
from tests.captures import CAPTURES


def _frames(body: bytes) -> list[bytes]:
    return [f + b"\n\n" for f in body.split(b"\n\n") if f.strip()]


def _relay(body: bytes, fixup: MessagesFixup | None, read: int = 7) -> bytes:
    """The capture fed in small reads, as a socket would deliver it."""
    meter = Meter(WireFormat.ANTHROPIC, stream=True, fixup=fixup)
    out = [meter.feed(body[i : i + read]) for i in range(0, len(body), read)]
    out.append(meter.close())
    assert meter.outcome() is None
    return b"".join(out)


def _delta(body: bytes) -> dict[str, object]:
    (frame,) = [f for f in _frames(body) if f.startswith(b"event: message_delta")]
    return json.loads(frame.split(b"data: ", 1)[1])  # type: ignore[no-any-return]


def test_a_matched_stop_and_the_usage_are_fixed_in_message_delta_only() -> None:
    captured = (CAPTURES / "llamacpp_anthropic_stream_stop.sse").read_bytes()
    assert _delta(captured)["delta"] == {"stop_reason": "end_turn", "stop_sequence": "im_"}
    fixup = MessagesFixup(complete_usage=True, fix_stop_sequence=True, stop_sequences=("im_",))
    relayed = _relay(captured, fixup)

    delta = _delta(relayed)
    assert delta["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "im_"}
    start = json.loads(_frames(captured)[0].split(b"data: ", 1)[1])["message"]["usage"]
    assert delta["usage"] == {
        "input_tokens": start["input_tokens"],
        "output_tokens": 4,
        "cache_read_input_tokens": start["cache_read_input_tokens"],
        "cache_creation_input_tokens": 0,
    }
    before = [f for f in _frames(captured) if not f.startswith(b"event: message_delta")]
    after = [f for f in _frames(relayed) if not f.startswith(b"event: message_delta")]
    assert after == before  # byte for byte


def test_without_a_fixup_the_relay_is_byte_for_byte() -> None:
    captured = (CAPTURES / "llamacpp_anthropic_stream_stop.sse").read_bytes()
    assert _relay(captured, None) == captured


def test_a_sequence_the_client_did_not_ask_for_is_dropped() -> None:
    captured = (CAPTURES / "llamacpp_anthropic_stream.sse").read_bytes()
    stray = captured.replace(
        b'"stop_reason":"max_tokens","stop_sequence":null',
        b'"stop_reason":"end_turn","stop_sequence":" "',
    )
    fixup = MessagesFixup(fix_stop_sequence=True)
    assert _delta(_relay(stray, fixup))["delta"] == {
        "stop_reason": "end_turn",
        "stop_sequence": None,
    }


def test_a_whole_answer_gets_the_stop_pairing() -> None:
    captured = (CAPTURES / "llamacpp_anthropic_response_stop.json").read_bytes()
    meter = Meter(
        WireFormat.ANTHROPIC,
        stream=False,
        fixup=MessagesFixup(complete_usage=True, fix_stop_sequence=True, stop_sequences=("im_",)),
    )
    meter.feed(captured)
    answer = json.loads(meter.close())
    assert (answer["stop_reason"], answer["stop_sequence"]) == ("stop_sequence", "im_")
    assert answer["usage"] == json.loads(captured)["usage"]  # whole answers' usage is complete
