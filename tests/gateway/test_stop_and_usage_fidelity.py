"""Issue 10, points 6, 8 and 12: what an Anthropic client learns of why and at what cost an
answer ended, whichever engine made it.

- 6: vLLM names the stop sequence that matched (`choices[].stop_reason`); transcoded to
  Messages it is stop_reason "stop_sequence" with `stop_sequence`, whole and streamed.
- 8: llama-server's /v1/messages streams message_delta with output_tokens only; the client
  gets the whole metered usage there, as the official API sends it.
- 12: llama-server answers a matched stop sequence with stop_reason "end_turn", and ignores
  `output_config.format` on /v1/messages; the client gets Anthropic's pairing, and a
  json_schema request goes to Chat Completions as `response_format`.

The fakes replay what the real engines send (docs/captures/llamacpp_anthropic_*_stop.*, and
vLLM's protocol for stop_reason); tests/test_real_engine.py asks the real llama-server.
"""

from __future__ import annotations

from typing import Any

from modelport.backends import connect
from modelport.types import ChatRequest, Done, Message
from tests.fakes import Reply
from tests.gateway.helpers import HI, backend, chat_requests

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}


async def _stream_events(ac: Any, **kw: Any) -> tuple[list[Any], Any]:
    """Every event the SDK parsed from a stream, and its final message."""
    async with ac.messages.stream(**kw) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_message()
    return events, final


# == 6. vLLM's matched stop sequence, transcoded to Messages ===================================


async def test_vllm_stop_sequence_reaches_an_anthropic_client(
    fake_engine, gateway, clients
) -> None:
    # An OpenAI-compatible backend on vLLM: Anthropic clients are transcoded.
    vllm = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(backends=[backend("openai-compatible", vllm)])
    ac = clients("anthropic", url)

    vllm.replies.append(Reply(text="one two", stop_sequence="three"))
    msg = await ac.messages.create(
        model="qwen", max_tokens=20, messages=HI, stop_sequences=["three"]
    )
    assert (msg.stop_reason, msg.stop_sequence) == ("stop_sequence", "three")
    assert chat_requests(vllm)[-1].json["stop"] == ["three"]

    vllm.replies.append(Reply(text="one two", stop_sequence="three", chunk_chars=2))
    events, final = await _stream_events(
        ac, model="qwen", max_tokens=20, messages=HI, stop_sequences=["three"]
    )
    (delta,) = [e for e in events if e.type == "message_delta"]
    assert (delta.delta.stop_reason, delta.delta.stop_sequence) == ("stop_sequence", "three")
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "three")

    # EOS (vLLM's stop_reason null) and a stop token id are no stop sequence.
    for stop in (None, 106):
        vllm.replies.append(Reply(text="one two", stop_sequence=stop))
        msg = await ac.messages.create(
            model="qwen", max_tokens=20, messages=HI, stop_sequences=["three"]
        )
        assert (msg.stop_reason, msg.stop_sequence) == ("end_turn", None)


async def test_vllm_stop_sequence_in_the_library(fake_engine) -> None:
    vllm = await fake_engine("vllm", models=["qwen"])
    engine = connect(f"vllm:{vllm.url}")
    try:
        request = ChatRequest(model="qwen", messages=(Message.user("hi"),), stop=("three",))
        vllm.replies.append(Reply(text="one two", stop_sequence="three"))
        response = await engine.chat(request)
        assert response.stop_sequence == "three"
        vllm.replies.append(Reply(text="one two", stop_sequence="three"))
        events = [e async for e in engine.stream(request)]
        assert isinstance(events[-1], Done) and events[-1].stop_sequence == "three"
    finally:
        await engine.aclose()


# == 8. llama-server's partial stream usage, completed on the relay ============================


async def test_llamacpp_stream_usage_is_complete_in_message_delta(
    fake_engine, gateway, clients
) -> None:
    llama = await fake_engine("llamacpp", models=["gemma"])
    llama.default_reply = Reply(text="A streamed answer.", usage=(26, 5), chunk_chars=3)
    _gw, url = await gateway(backends=[backend("llamacpp", llama)])
    ac = clients("anthropic", url)

    events, final = await _stream_events(ac, model="gemma", max_tokens=20, messages=HI)
    (start,) = [e for e in events if e.type == "message_start"]
    (delta,) = [e for e in events if e.type == "message_delta"]
    assert start.message.usage.input_tokens == 26  # the engine's own, untouched
    # langchain-anthropic reads the stream's usage from message_delta: it is all there.
    assert delta.usage.input_tokens == 26
    assert delta.usage.output_tokens == 5
    assert delta.usage.cache_read_input_tokens == 0
    assert (final.usage.input_tokens, final.usage.output_tokens) == (26, 5)
    text = "".join(b.text for b in final.content if b.type == "text")
    assert text == "A streamed answer."


# == 12. llama-server's stop fields and output_config ===========================================


async def test_llamacpp_matched_stop_sequence_is_named_as_anthropic_does(
    fake_engine, gateway, clients
) -> None:
    llama = await fake_engine("llamacpp", models=["gemma"])
    _gw, url = await gateway(backends=[backend("llamacpp", llama)])
    ac = clients("anthropic", url)
    asked = {"model": "gemma", "max_tokens": 20, "messages": HI, "stop_sequences": ["im_"]}

    llama.replies.append(Reply(text="<|", stop_sequence="im_"))  # the captured answer
    msg = await ac.messages.create(**asked)
    assert (msg.stop_reason, msg.stop_sequence) == ("stop_sequence", "im_")
    assert chat_requests(llama)[-1].path == "/v1/messages"  # still passed through

    llama.replies.append(Reply(text="<|", stop_sequence="im_", chunk_chars=1))
    events, final = await _stream_events(ac, **asked)
    (delta,) = [e for e in events if e.type == "message_delta"]
    assert (delta.delta.stop_reason, delta.delta.stop_sequence) == ("stop_sequence", "im_")
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "im_")

    # A sequence the client never asked for did not match: end_turn, stop_sequence null.
    llama.replies.append(Reply(text="Hi.", stop_sequence=" "))
    msg = await ac.messages.create(model="gemma", max_tokens=20, messages=HI)
    assert (msg.stop_reason, msg.stop_sequence) == ("end_turn", None)
    llama.replies.append(Reply(text="Hi.", stop_sequence=" "))
    events, final = await _stream_events(ac, model="gemma", max_tokens=20, messages=HI)
    (delta,) = [e for e in events if e.type == "message_delta"]
    assert (delta.delta.stop_reason, delta.delta.stop_sequence) == ("end_turn", None)


async def test_output_config_json_schema_goes_to_chat_completions_on_llamacpp(
    fake_engine, gateway, clients
) -> None:
    llama = await fake_engine("llamacpp", models=["gemma"])
    llama.default_reply = Reply(text='{"city": "Paris"}', chunk_chars=5)
    _gw, url = await gateway(backends=[backend("llamacpp", llama)])
    ac = clients("anthropic", url)
    output_config = {"format": {"type": "json_schema", "schema": SCHEMA}}

    msg = await ac.messages.create(
        model="gemma", max_tokens=40, messages=HI, extra_body={"output_config": output_config}
    )
    assert msg.content[0].text == '{"city": "Paris"}'
    sent = chat_requests(llama)[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.json["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": SCHEMA},
    }
    _events, final = await _stream_events(
        ac, model="gemma", max_tokens=40, messages=HI, extra_body={"output_config": output_config}
    )
    assert final.content[0].text == '{"city": "Paris"}'
    assert chat_requests(llama)[-1].path == "/v1/chat/completions"

    # Without a schema the request still passes through to /v1/messages.
    await ac.messages.create(model="gemma", max_tokens=40, messages=HI)
    assert chat_requests(llama)[-1].path == "/v1/messages"
