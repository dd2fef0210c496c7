"""Gateway keys are required and never leak; upstream keys never reach clients or logs."""

from __future__ import annotations

import json
import logging

import anthropic
import openai
import pytest

from modelport.gateway.server import StartError
from tests.fakes import Reply
from tests.gateway.helpers import HI, backend, chat_body, chat_path, chat_requests, get, post

# == 9. keys =====================================================================================

GW_KEY = "sk-gw-0123456789abcdef"


async def test_keys_are_required_and_never_leak(
    fake_engine, gateway, clients, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vllm = await fake_engine("vllm", models=["m"])
    gw, url = await gateway(backends=[backend("vllm", vllm)], env={"MODELPORT_API_KEY": GW_KEY})
    bodies: list[bytes] = []

    status, _, raw = await post(url, "/v1/chat/completions", chat_body("openai", stream=False))
    bodies.append(raw)
    assert status == 401
    assert json.loads(raw)["error"]["type"] == "authentication_error"
    status, _, raw = await post(url, "/v1/messages", chat_body("anthropic", stream=False))
    bodies.append(raw)
    assert status == 401
    assert json.loads(raw) == {
        "type": "error",
        "error": {"type": "authentication_error", "message": json.loads(raw)["error"]["message"]},
    }
    for headers in (
        {"Authorization": "Bearer sk-wrong-0123456789"},
        {"x-api-key": "sk-wrong-0123456789"},
        {"Authorization": f"Bearer {GW_KEY}x"},
    ):
        status, _, raw = await post(
            url, "/v1/chat/completions", chat_body("openai", stream=False), headers=headers
        )
        bodies.append(raw)
        assert status == 401
        assert b"sk-wrong" not in raw
    status, _, raw = await post(
        url, "/v1/models", {}, headers={"Authorization": f"Bearer {GW_KEY}"}
    )  # POST on a GET route: still an error without the key in it
    bodies.append(raw)

    for path in ("/health", "/ready"):
        status, _, raw = await get(url, path)
        assert status == 200, path
    status, _, raw = await get(url, "/metrics")
    assert status == 401

    # Bearer (the OpenAI SDK) and x-api-key (the Anthropic SDK) both work.
    reply = await clients("openai", url, key=GW_KEY).chat.completions.create(model="m", messages=HI)
    assert reply.choices[0].message.content == "Hello from the fake."
    msg = await clients("anthropic", url, key=GW_KEY).messages.create(
        model="m", max_tokens=5, messages=HI
    )
    assert msg.content[0].text == "Hello from the fake."
    status, _, raw = await post(
        url, "/v1/chat/completions", chat_body("openai", stream=True), headers={"x-api-key": GW_KEY}
    )
    assert status == 200 and raw.rstrip().endswith(b"data: [DONE]")
    with pytest.raises(openai.AuthenticationError):
        await clients("openai", url, key="nope").chat.completions.create(model="m", messages=HI)
    with pytest.raises(anthropic.AuthenticationError):
        await clients("anthropic", url, key="nope").messages.create(
            model="m", max_tokens=5, messages=HI
        )
    # The engine never saw the gateway's key.
    assert all(GW_KEY not in json.dumps(dict(r.headers)) for r in vllm.requests)
    assert len(chat_requests(vllm)) == 3

    await gw.stop(grace_s=0)
    for raw in bodies:
        assert GW_KEY.encode() not in raw
    assert GW_KEY not in caplog.text
    assert all(GW_KEY not in str(r.args) for r in caplog.records)


@pytest.mark.parametrize("up_key", ["sk-or-v1-0123456789abcdef", "hunter2-upstream-secret"])
async def test_upstream_keys_never_reach_clients_or_logs(
    fake_engine, gateway, caplog: pytest.LogCaptureFixture, up_key: str
) -> None:
    """Engines echo keys in their errors ("Incorrect API key provided: ..."); the gateway
    knows its upstream keys and must keep them out of every answer, whatever their shape."""
    caplog.set_level(logging.DEBUG)
    router = await fake_engine("openrouter", models=["m"], api_key=up_key)
    claude = await fake_engine("anthropic", models=["c"], api_key=up_key)
    gw, url = await gateway(
        backends=[
            backend("openrouter", router, api_key_env="UP"),
            backend("anthropic", claude, api_key_env="UP"),
        ],
        env={"UP": up_key},
    )
    leaks = []
    for fake, model in ((router, "m"), (claude, "c")):
        for status in (400, 401, 500):
            for fmt in ("openai", "anthropic"):
                fake.replies.append(
                    Reply(status=status, error_message=f"Incorrect API key provided: {up_key}")
                )
                got, _, raw = await post(
                    url, chat_path(fmt), chat_body(fmt, stream=False, model=model)
                )
                assert got >= 400
                if up_key.encode() in raw:
                    leaks.append((fake.kind, status, fmt))
    await gw.stop(grace_s=0)
    assert (leaks, up_key in caplog.text) == ([], False)


async def test_non_loopback_host_needs_a_key(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    with pytest.raises(StartError, match="MODELPORT_API_KEY"):
        await gateway(backends=[backend("vllm", vllm)], server={"host": "0.0.0.0"}, env={})
    _gw, url = await gateway(
        backends=[backend("vllm", vllm)],
        server={"host": "0.0.0.0"},
        env={"MODELPORT_API_KEY": GW_KEY},
    )
    reply = await clients("openai", url, key=GW_KEY).chat.completions.create(model="m", messages=HI)
    assert reply.choices[0].message.content == "Hello from the fake."
