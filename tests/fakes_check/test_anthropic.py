"""The Anthropic fake: stream events, whole messages, count_tokens, headers, errors."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes import Reply
from tests.fakes_check.helpers import AV, USER, call

# -- Anthropic -----------------------------------------------------------------------------


def anthropic_headers(key: str = "ak") -> dict[str, str]:
    return {"x-api-key": key, **AV}


async def test_anthropic_stream_events(fake_engine) -> None:
    fake = await fake_engine("anthropic", models=["claude-x"], api_key="ak")
    fake.default_reply = Reply(
        thinking="Consider.",
        text="Answer.",
        usage=(21, 6),
        chunk_chars=5,
        tool_calls=[("toolu_1", "get_weather", {"city": "Rome"})],
    )
    body = {"model": "claude-x", "max_tokens": 64, "stream": True, "messages": USER}
    answer = await call(fake, "POST", "/v1/messages", body, anthropic_headers())
    assert answer.headers["Content-Type"].startswith("text/event-stream")
    events = answer.events
    names = [e["type"] for e in events]
    assert names[:2] == ["message_start", "ping"] and names.count("ping") == 2
    assert names[-2:] == ["message_delta", "message_stop"]
    blocks = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert blocks == [
        {"type": "thinking", "thinking": "", "signature": ""},
        {"type": "text", "text": ""},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
    ]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e["type"] == "content_block_delta":
            by_type.setdefault(e["delta"]["type"], []).append(e)
    assert "".join(e["delta"]["thinking"] for e in by_type["thinking_delta"]) == "Consider."
    assert [e["delta"]["signature"] for e in by_type["signature_delta"]] == ["fake-signature"]
    assert "".join(e["delta"]["text"] for e in by_type["text_delta"]) == "Answer."
    partial = [e["delta"]["partial_json"] for e in by_type["input_json_delta"]]
    assert partial[0] == "" and json.loads("".join(partial)) == {"city": "Rome"}
    assert [e["index"] for e in by_type["input_json_delta"]] == [2] * len(partial)
    final = events[-2]
    assert final["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert final["usage"]["output_tokens"] == 6 and final["usage"]["input_tokens"] == 21
    assert events[0]["message"]["usage"]["input_tokens"] == 21


async def test_anthropic_whole_message_and_count(fake_engine) -> None:
    fake = await fake_engine("anthropic", models=["claude-x"], api_key="ak", context_window=200_000)
    body = {"model": "claude-x", "max_tokens": 64, "messages": USER}
    message = (await call(fake, "POST", "/v1/messages", body, anthropic_headers())).json
    assert message["type"] == "message" and message["content"] == [
        {"type": "text", "text": "Hello from the fake."}
    ]
    assert message["stop_reason"] == "end_turn" and message["usage"]["output_tokens"] == 5
    count = await call(
        fake,
        "POST",
        "/v1/messages/count_tokens",
        {"model": "claude-x", "messages": USER},
        anthropic_headers(),
    )
    assert count.json["input_tokens"] >= 1
    models = (await call(fake, "GET", "/v1/models", headers=anthropic_headers())).json
    assert (
        models["data"][0]["max_input_tokens"] == 200_000
        and models["data"][0]["max_tokens"] == 50_000
    )
    assert models["has_more"] is False


async def test_anthropic_headers_and_errors(fake_engine) -> None:
    fake = await fake_engine("anthropic", models=["claude-x"], api_key="ak")
    body = {"model": "claude-x", "max_tokens": 64, "messages": USER}
    no_version = await call(fake, "POST", "/v1/messages", body, {"x-api-key": "ak"})
    assert no_version.status == 400 and no_version.json["error"]["type"] == "invalid_request_error"
    no_key = await call(fake, "POST", "/v1/messages", body, AV)
    assert no_key.status == 401 and no_key.json["error"]["type"] == "authentication_error"
    bearer = await call(fake, "POST", "/v1/messages", body, {"Authorization": "Bearer ak", **AV})
    assert bearer.status == 401
    no_max = await call(
        fake, "POST", "/v1/messages", {"model": "claude-x", "messages": USER}, anthropic_headers()
    )
    assert no_max.status == 400 and "max_tokens" in no_max.json["error"]["message"]
    fake.default_reply = Reply(status=529)
    busy = await call(fake, "POST", "/v1/messages", body, anthropic_headers())
    assert busy.status == 529 and busy.json["type"] == "error"
    assert busy.json["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert busy.json["request_id"].startswith("req_") and busy.headers["request-id"].startswith(
        "req_"
    )
    fake.default_reply = Reply(text="x" * 20, fail_after_chunks=2, error_message="Overloaded")
    failed = await call(fake, "POST", "/v1/messages", {**body, "stream": True}, anthropic_headers())
    event, data = failed.frames[-1]
    assert event == "error" and json.loads(data) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    missing = await call(
        fake, "POST", "/v1/messages", {**body, "model": "claude-nope"}, anthropic_headers()
    )
    assert missing.status == 404 and missing.json["error"]["message"] == "model: claude-nope"
