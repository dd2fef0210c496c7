"""Issue 11.11: whose key failed? An engine refusing the gateway's own credential is not
the client's wrong key: 502 naming the backend, in every dialect, not 401 invalid_api_key
(which makes SDKs and agents tell the user to fix a key that is fine).

The engines' 401s are the protocol fakes' own (tests/fakes/errors.py: vLLM's
`{"error": "Unauthorized"}`, the Anthropic API's authentication_error).
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes import FakeEngine
from tests.gateway.helpers import HI, backend, post

GATEWAY_KEY = "sk-gateway-key-0123456789"
AUTH = {"Authorization": f"Bearer {GATEWAY_KEY}"}
HEADER = "x-modelport-backend"


async def wrong_upstream_key(fake_engine: Any, gateway: Any) -> tuple[Any, FakeEngine, str]:
    """A gateway with its own key, over an engine that wants another key than the one the
    gateway holds for it. Its models are asked for as `up/m` (its model list needs the key
    too, so the router cannot list them)."""
    fake = await fake_engine("vllm", models=["m"], api_key="sk-the-right-upstream-key")
    gw, url = await gateway(
        '[server]\napi_keys_env = ["GW_KEY"]\n',
        backends=[backend("vllm", fake, name="up", api_key_env="UP_KEY")],
        env={"GW_KEY": GATEWAY_KEY, "UP_KEY": "sk-a-revoked-upstream-key"},
    )
    return gw, fake, url


CLIENTS = [
    pytest.param("/v1/chat/completions", {"messages": HI}, "openai", id="openai-chat"),
    pytest.param("/v1/messages", {"messages": HI, "max_tokens": 10}, "anthropic", id="anthropic"),
    pytest.param("/v1/responses", {"input": "hi"}, "responses", id="responses"),
    pytest.param("/api/chat", {"messages": HI}, "ollama", id="ollama-chat"),
]


@pytest.mark.parametrize(("path", "body", "shape"), CLIENTS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_an_engine_rejecting_the_gateways_key_is_a_502_naming_it(
    fake_engine, gateway, path: str, body: dict[str, Any], shape: str, stream: bool
) -> None:
    gw, fake, url = await wrong_upstream_key(fake_engine, gateway)
    status, headers, raw = await post(
        url, path, {**body, "model": "up/m", "stream": stream}, headers=AUTH
    )
    assert status == 502, raw
    assert headers["x-should-retry"] == "false"  # the SDKs obey it over retry-on-5xx
    assert headers[HEADER] == f"vllm:{fake.url}"
    error = json.loads(raw)
    if shape in ("openai", "responses"):
        assert error["error"]["type"] == "server_error"
        assert error["error"]["code"] == "upstream_auth_failed"
        message = error["error"]["message"]
    elif shape == "anthropic":
        assert error == {
            "type": "error",
            "error": {"type": "api_error", "message": error["error"]["message"]},
        }
        message = error["error"]["message"]
    else:
        assert set(error) == {"error"}
        message = error["error"]
    assert message.startswith("backend 'up' rejected the gateway's credential (upstream HTTP 401)")
    assert "not at fault" in message
    assert "revoked" not in message and "invalid_api_key" not in raw.decode()
    assert gw.router.by_name("up").breaker.failures == 0  # a key to fix, not an engine down


async def test_the_client_keys_own_refusal_is_unchanged(fake_engine, gateway) -> None:
    """The contrast: a wrong key to the gateway itself stays 401 invalid_api_key."""
    _gw, fake, url = await wrong_upstream_key(fake_engine, gateway)
    status, _, raw = await post(
        url,
        "/v1/chat/completions",
        {"model": "up/m", "messages": HI},
        headers={"Authorization": "Bearer sk-wrong-gateway-key"},
    )
    assert status == 401
    assert json.loads(raw)["error"]["code"] == "invalid_api_key"
    assert fake.requests == [] or all(r.path != "/v1/chat/completions" for r in fake.requests)


async def test_sdks_raise_a_server_error_once_not_an_authentication_error(
    fake_engine, gateway
) -> None:
    """Real SDKs with their default retries: not AuthenticationError (which tells the user
    their key is wrong), and not retried (x-should-retry: false)."""
    _gw, fake, url = await wrong_upstream_key(fake_engine, gateway)
    oc = openai.AsyncOpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=2)
    ac = anthropic.AsyncAnthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=2)
    try:
        with pytest.raises(openai.InternalServerError) as caught:
            await oc.chat.completions.create(model="up/m", messages=HI)
        assert caught.value.status_code == 502
        assert "backend 'up'" in caught.value.message
        with pytest.raises(anthropic.InternalServerError) as err:
            await ac.messages.create(model="up/m", max_tokens=5, messages=HI)
        assert err.value.status_code == 502
    finally:
        await oc.close()
        await ac.close()
    asked = [r for r in fake.requests if r.method == "POST"]
    assert len(asked) == 2  # one each: neither SDK retried


async def test_a_rejected_key_falls_back_to_the_next_candidate(fake_engine, gateway) -> None:
    refused = await fake_engine("vllm", models=["m"], api_key="sk-the-right-upstream-key")
    spare = await fake_engine("vllm", models=["m"])
    gw, url = await gateway(
        backends=[
            backend("vllm", refused, name="a", api_key_env="UP_KEY"),
            backend("vllm", spare, name="b"),
        ],
        aliases={"smart": ["a/m", "b/m"]},
        env={"UP_KEY": "sk-a-revoked-upstream-key"},
    )
    status, headers, raw = await post(
        url, "/v1/chat/completions", {"model": "smart", "messages": HI}
    )
    assert status == 200, raw
    assert headers[HEADER] == f"vllm:{spare.url}"
    assert gw.router.by_name("a").breaker.failures == 0
