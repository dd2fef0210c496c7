"""Claude Code 2.1.332's own requests (docs/captures/clients) through the gateway.

Posted raw, byte for byte, to /v1/messages?beta=true with the headers it sent, and through
the official anthropic SDK: passed through to an engine that speaks Messages, and transcoded
to one that speaks only Chat Completions. Both stream.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.captures import ClientRequest, client_requests
from tests.fakes import Reply
from tests.gateway.helpers import backend, chat_requests, post, sse_frames

CAPTURED = {r.name: r for r in client_requests("claude-code-*.jsonl")}
FIRST = CAPTURED["claude-code-text#1"]  # [user, system]
ROUND_TRIP = CAPTURED["claude-code-tool-bash-thinking#2"]  # [user, system, assistant, user]
# What the transport sets for itself; the rest is sent as Claude Code sent it.
_TRANSPORT = {"host", "content-length", "connection", "accept-encoding"}
BIG = 1_000_000  # a context window the 32000 max_tokens and 50 kB prompt fit in


def _headers(captured: ClientRequest) -> dict[str, str]:
    return {k: v for k, v in captured.headers.items() if k.lower() not in _TRANSPORT}


async def _post_raw(url: str, captured: ClientRequest) -> tuple[int, str, bytes]:
    data = json.dumps(captured.body).encode()
    status, headers, body = await post(
        url, "/v1/messages?beta=true", data=data, headers=_headers(captured)
    )
    return status, headers.get("Content-Type", ""), body


def _streamed_text(body: bytes) -> tuple[list[str], str]:
    events, text = [], ""
    for event, data in sse_frames(body):
        events.append(event or "")
        payload = json.loads(data)
        delta = payload.get("delta") or {}
        text += delta.get("text", "") if delta.get("type") == "text_delta" else ""
    return events, text


@pytest.mark.parametrize("captured", [FIRST, ROUND_TRIP], ids=lambda r: r.name)
async def test_passthrough_to_an_engine_that_speaks_messages(
    fake_engine, gateway, captured: ClientRequest
) -> None:
    vllm = await fake_engine("vllm", models=["some-model"], context_window=BIG)
    vllm.default_reply = Reply(text="hi from the engine", chunk_chars=3)
    _gw, url = await gateway(backends=[backend("vllm", vllm)])

    status, content_type, body = await _post_raw(url, captured)
    assert status == 200, body
    assert content_type.startswith("text/event-stream")
    events, text = _streamed_text(body)
    assert (events[0], events[-1], text) == ("message_start", "message_stop", "hi from the engine")
    # The engine got the body untouched: the system message in place, thinking, effort,
    # context_management, metadata, defer_loading and cache_control all kept.
    sent = chat_requests(vllm)[-1]
    assert sent.path == "/v1/messages"
    assert sent.json == captured.body


@pytest.mark.parametrize("captured", [FIRST, ROUND_TRIP], ids=lambda r: r.name)
async def test_transcoded_to_an_engine_that_speaks_only_chat_completions(
    fake_engine, gateway, captured: ClientRequest
) -> None:
    local = await fake_engine("localai", models=["some-model"], context_window=BIG)
    local.default_reply = Reply(text="hi from the engine", thinking="Fine.", chunk_chars=3)
    _gw, url = await gateway(backends=[backend("localai", local)])

    status, content_type, body = await _post_raw(url, captured)
    assert status == 200, body
    assert content_type.startswith("text/event-stream")
    events, text = _streamed_text(body)
    assert (events[0], events[-1], text) == ("message_start", "message_stop", "hi from the engine")

    sent = chat_requests(local)[-1].json
    roles = [m["role"] for m in sent["messages"]]
    # The top-level system first; Claude Code's system message at its place after the user's.
    assert roles[:3] == ["system", "user", "system"]
    assert sent["messages"][2]["content"].startswith("# Environment")
    assert sent["reasoning_effort"] == "high"
    assert sent["max_tokens"] == 32000
    assert len(sent["tools"]) == len(captured.body["tools"])
    # Anthropic's own fields are dropped, never sent to an engine that would refuse them.
    for field in ("thinking", "output_config", "context_management", "metadata"):
        assert field not in sent


async def test_through_the_anthropic_sdk_both_ways(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["some-model"], context_window=BIG)
    local = await fake_engine("localai", models=["other-model"], context_window=BIG)
    for fake in (vllm, local):
        fake.default_reply = Reply(text="hi from the engine", chunk_chars=3)
    _gw, url = await gateway(backends=[backend("vllm", vllm), backend("localai", local)])
    ac = clients("anthropic", url)
    fields: dict[str, Any] = dict(ROUND_TRIP.body)
    beta = ROUND_TRIP.headers["anthropic-beta"]

    # Passed through: the system message at its place; transcoded: after the top-level system.
    cases = (
        ("some-model", vllm, ["user", "system"]),
        ("other-model", local, ["system", "user", "system"]),
    )
    for model, fake, roles in cases:
        rest = {k: v for k, v in fields.items() if k not in ("model", "max_tokens", "messages")}
        rest.pop("stream")
        async with ac.messages.stream(
            model=model,
            max_tokens=fields["max_tokens"],
            messages=fields["messages"],
            extra_body=rest,
            extra_headers={"anthropic-beta": beta},
            extra_query={"beta": "true"},
        ) as stream:
            final = await stream.get_final_message()
        assert final.content[-1].type == "text"
        assert final.content[-1].text == "hi from the engine"
        assert final.stop_reason == "end_turn"
        sent = chat_requests(fake)[-1].json["messages"]
        assert [m["role"] for m in sent[: len(roles)]] == roles


async def test_max_tokens_an_engine_refuses_is_a_clear_400(fake_engine, gateway) -> None:
    vllm = await fake_engine("vllm", models=["some-model"], context_window=8192)
    _gw, url = await gateway(backends=[backend("vllm", vllm)])

    status, _content_type, body = await _post_raw(url, FIRST)
    assert status == 400, body
    error = json.loads(body)
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    # The engine's own refusal (32000 + the prompt > 8192), not ours: it was asked.
    assert "context" in error["error"]["message"].lower(), error
    assert len(chat_requests(vllm)) == 1
