"""Routing through the gateway: prefixes, aliases, fallback, priority and the breaker."""

from __future__ import annotations

import asyncio

import anthropic
import openai
import pytest

from tests.fakes import Reply
from tests.gateway.helpers import HI, backend, chat_requests, openai_error_frame, post

# == 4. router ===================================================================================


async def test_prefix_picks_the_named_backend(fake_engine, gateway, clients) -> None:
    one = await fake_engine("vllm", models=["qwen"])
    two = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(
        backends=[backend("vllm", one, name="one"), backend("vllm", two, name="two")]
    )
    oc = clients("openai", url)
    raw = oc.chat.completions.with_raw_response
    first = await raw.create(model="two/qwen", messages=HI)
    assert first.headers["x-modelport-backend"] == f"vllm:{two.url}"
    second = await raw.create(model="one/qwen", messages=HI)
    assert second.headers["x-modelport-backend"] == f"vllm:{one.url}"
    assert [r.json["model"] for r in chat_requests(two)] == ["qwen"]
    assert [r.json["model"] for r in chat_requests(one)] == ["qwen"]


async def test_alias_falls_back_past_a_down_backend(
    fake_engine, gateway, clients, refused_url: str
) -> None:
    up = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(
        backends=[
            {"kind": "vllm", "url": refused_url, "name": "down"},
            backend("vllm", up, name="up"),
        ],
        aliases={"smart": ["down/qwen", "up/qwen"]},
    )
    raw = await clients("openai", url).chat.completions.with_raw_response.create(
        model="smart", messages=HI
    )
    assert raw.headers["x-modelport-backend"] == f"vllm:{up.url}"
    assert raw.parse().choices[0].message.content == "Hello from the fake."
    assert chat_requests(up)[-1].json["model"] == "qwen"


async def test_alias_falls_back_when_the_first_answers_503(fake_engine, gateway, clients) -> None:
    busy = await fake_engine("vllm", models=["big"])
    spare = await fake_engine("localai", models=["small"])
    busy.default_reply = Reply(status=503)
    _gw, url = await gateway(
        backends=[backend("vllm", busy, name="busy"), backend("localai", spare, name="spare")],
        aliases={"smart": ["big", "small"]},
    )
    oc = clients("openai", url)
    raw = await oc.chat.completions.with_raw_response.create(model="smart", messages=HI)
    assert raw.headers["x-modelport-backend"] == f"localai:{spare.url}"
    assert raw.parse().model == "smart"
    assert len(chat_requests(busy)) == 1
    assert chat_requests(spare)[-1].json["model"] == "small"

    # The same through a stream and through the Anthropic format.
    stream = await oc.chat.completions.create(model="smart", messages=HI, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Hello from the fake."
    msg = await clients("anthropic", url).messages.create(model="smart", max_tokens=10, messages=HI)
    assert msg.content[0].text == "Hello from the fake."
    assert len(chat_requests(busy)) == 3
    assert len(chat_requests(spare)) == 3


async def test_local_before_cloud_then_priority(fake_engine, gateway, clients) -> None:
    cloud = await fake_engine("openrouter", models=["m"], api_key="sk-or-1234567")
    low = await fake_engine("vllm", models=["m"])
    high = await fake_engine("localai", models=["m"])
    _gw, url = await gateway(
        backends=[
            backend("openrouter", cloud, api_key_env="OR_KEY", priority=100),
            backend("vllm", low, name="low", priority=1),
            backend("localai", high, name="high", priority=5),
        ],
        env={"OR_KEY": "sk-or-1234567"},
    )
    oc = clients("openai", url)
    raw = await oc.chat.completions.with_raw_response.create(model="m", messages=HI)
    assert raw.headers["x-modelport-backend"] == f"localai:{high.url}"
    assert (len(chat_requests(high)), len(chat_requests(low)), len(chat_requests(cloud))) == (
        1,
        0,
        0,
    )
    # The cloud is still reachable by name.
    raw = await oc.chat.completions.with_raw_response.create(model="openrouter/m", messages=HI)
    assert raw.headers["x-modelport-backend"] == "openrouter"
    assert len(chat_requests(cloud)) == 1


async def test_breaker_opens_after_three_failures_and_closes_after_a_success(
    fake_engine, gateway, clients
) -> None:
    flaky = await fake_engine("vllm", models=["m"])
    good = await fake_engine("localai", models=["m"])
    flaky.default_reply = Reply(status=503)
    gw, url = await gateway(
        backends=[
            backend("vllm", flaky, name="flaky", priority=9),
            backend("localai", good, name="good"),
        ]
    )
    oc = clients("openai", url)
    breaker = gw.router.by_name("flaky").breaker
    for n in range(1, 4):
        reply = await oc.chat.completions.create(model="m", messages=HI)
        assert reply.choices[0].message.content == "Hello from the fake."
        assert len(chat_requests(flaky)) == n
    assert breaker.state == "open"
    await oc.chat.completions.create(model="m", messages=HI)
    assert len(chat_requests(flaky)) == 3  # the open breaker kept it from flaky
    assert len(chat_requests(good)) == 4

    breaker.cooldown_s = 0.05
    await asyncio.sleep(0.1)
    flaky.default_reply = Reply(text="recovered")
    reply = await oc.chat.completions.create(model="m", messages=HI)
    assert reply.choices[0].message.content == "recovered"  # the one trial went through
    assert breaker.state == "closed"
    flaky.default_reply = Reply(status=503)
    await oc.chat.completions.create(model="m", messages=HI)
    assert breaker.state == "closed"  # one failure after a success does not reopen it
    assert len(chat_requests(flaky)) == 5


async def test_breaker_open_on_the_only_backend_is_an_error_without_a_request(
    fake_engine, gateway, clients
) -> None:
    flaky = await fake_engine("vllm", models=["m"])
    flaky.default_reply = Reply(status=503)
    _gw, url = await gateway(backends=[backend("vllm", flaky)])
    oc = clients("openai", url)
    for _ in range(3):
        with pytest.raises(openai.APIStatusError) as caught:
            await oc.chat.completions.create(model="m", messages=HI)
        assert caught.value.status_code == 503
    with pytest.raises(openai.APIStatusError) as caught:
        await oc.chat.completions.create(model="m", messages=HI)
    assert caught.value.status_code == 503
    assert caught.value.response.headers.get("Retry-After")
    assert len(chat_requests(flaky)) == 3
    with pytest.raises(anthropic.APIStatusError) as err:
        await clients("anthropic", url).messages.create(model="m", max_tokens=5, messages=HI)
    assert err.value.status_code == 529
    assert err.value.body["error"]["type"] == "overloaded_error"
    assert len(chat_requests(flaky)) == 3


@pytest.mark.parametrize("fault", ["drop", "fail"])
async def test_no_fallback_after_the_first_byte(fake_engine, gateway, fault: str) -> None:
    first = await fake_engine("vllm", models=["m"])
    second = await fake_engine("localai", models=["m"])
    first.default_reply = Reply(
        text="a long enough answer to stream",
        drop_after_chunks=2 if fault == "drop" else None,
        fail_after_chunks=2 if fault == "fail" else None,
    )
    _gw, url = await gateway(
        backends=[backend("vllm", first, priority=5), backend("localai", second)]
    )
    status, _, raw = await post(
        url, "/v1/chat/completions", {"model": "m", "messages": HI, "stream": True}
    )
    assert status == 200
    assert b"a lo" in raw  # the first backend's bytes reached the client
    openai_error_frame(raw)
    assert chat_requests(second) == []
    assert len(chat_requests(first)) == 1
