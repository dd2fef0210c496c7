"""GET /v1/models/{id} and /v1/models in each client's shape (issue 10, point 3).

The official openai and anthropic SDKs are the clients; the engines are protocol fakes.
Anthropic's shapes and paging rules are from its API reference (List Models, Get a Model)
and the SDK's `ModelInfo` and `SyncPage` (next page: `after_id = last_id`).
"""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from tests.gateway.helpers import backend, get

ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}


async def _two_engines(fake_engine, gateway):
    vllm = await fake_engine("vllm", models=["qwen", "org/Qwen3-8B"], context_window=8192)
    claude = await fake_engine("anthropic", models=["claude-x"], api_key="k")
    _gw, url = await gateway(
        backends=[
            backend("vllm", vllm, name="gpu"),
            backend("anthropic", claude, name="claude", api_key_env="K"),
        ],
        aliases={"fast": ["nothing-here", "qwen"]},
        env={"K": "k"},
    )
    return vllm, url


async def test_openai_sdk_retrieves_a_model_an_alias_and_a_prefixed_name(
    fake_engine, gateway, clients
) -> None:
    vllm, url = await _two_engines(fake_engine, gateway)
    oc = clients("openai", url)
    qwen = await oc.models.retrieve("qwen")
    assert (qwen.id, qwen.object, qwen.owned_by) == ("qwen", "model", "gpu")
    assert isinstance(qwen.created, int)
    extras = qwen.model_dump()
    assert extras["context_window"] == 8192
    assert extras["backend"] == f"vllm:{vllm.url}"
    assert extras["ready"] is True
    assert extras["capabilities"]["tools"] is True
    # An id with a slash in it, and an `upstream/model` name, are found whole.
    assert (await oc.models.retrieve("org/Qwen3-8B")).id == "org/Qwen3-8B"
    named = await oc.models.retrieve("gpu/qwen")
    assert (named.id, named.owned_by) == ("gpu/qwen", "gpu")
    fast = (await oc.models.retrieve("fast")).model_dump()
    assert (fast["id"], fast["owned_by"]) == ("fast", "alias")
    assert fast["targets"] == ["nothing-here", "qwen"]


async def test_openai_sdk_gets_a_404_model_not_found_for_an_unknown_id(
    fake_engine, gateway, clients
) -> None:
    _, url = await _two_engines(fake_engine, gateway)
    with pytest.raises(openai.NotFoundError) as caught:
        await clients("openai", url).models.retrieve("qwem")
    error = caught.value.body
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "model_not_found"
    assert "'qwem'" in error["message"] and "did you mean 'qwen'" in error["message"]


async def test_anthropic_sdk_retrieves_a_model_and_resolves_an_alias(
    fake_engine, gateway, clients
) -> None:
    _, url = await _two_engines(fake_engine, gateway)
    ac = clients("anthropic", url)
    qwen = await ac.models.retrieve("qwen")
    assert (qwen.type, qwen.id, qwen.display_name) == ("model", "qwen", "qwen")
    assert qwen.created_at.year >= 1970 and qwen.created_at.tzinfo is not None
    assert (qwen.max_input_tokens, qwen.max_tokens) == (8192, 8192)
    # As Anthropic's API does, an alias resolves to the model it names.
    fast = await ac.models.retrieve("fast")
    assert fast.id == "qwen"
    assert (await ac.models.retrieve("gpu/qwen")).id == "qwen"
    assert (await ac.models.retrieve("org/Qwen3-8B")).id == "org/Qwen3-8B"
    claude = await ac.models.retrieve("claude-x")
    assert claude.display_name == "Claude X"  # the engine's own display name and date
    assert claude.created_at.year == 2025


async def test_anthropic_sdk_gets_not_found_error_for_an_unknown_id(
    fake_engine, gateway, clients
) -> None:
    _, url = await _two_engines(fake_engine, gateway)
    with pytest.raises(anthropic.NotFoundError) as caught:
        await clients("anthropic", url).models.retrieve("nope")
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "not_found_error"
    # The raw answer: Anthropic's body, with the header only Anthropic clients send.
    status, _, raw = await get(url, "/v1/models/nope", headers=ANTHROPIC_HEADERS)
    assert status == 404 and json.loads(raw)["error"]["type"] == "not_found_error"
    status, _, raw = await get(url, "/v1/models/nope")
    assert status == 404 and json.loads(raw)["error"]["code"] == "model_not_found"


async def test_anthropic_sdk_pages_through_more_than_twenty_models(
    fake_engine, gateway, clients
) -> None:
    names = [f"m{i:02d}" for i in range(45)]
    vllm = await fake_engine("vllm", models=names)
    _gw, url = await gateway(backends=[backend("vllm", vllm)], aliases={"best": ["m01"]})
    ac = clients("anthropic", url)
    first = await ac.models.list()
    assert [m.id for m in first.data] == names[:20]  # default limit 20
    assert (first.has_more, first.first_id, first.last_id) == (True, "m00", "m19")
    everything = [m.id async for m in ac.models.list()]  # auto-paging: after_id = last_id
    assert everything == names  # every model once, in order; aliases are not models here
    ten = await ac.models.list(limit=10, after_id="m39")
    assert [m.id for m in ten.data] == names[40:]
    assert ten.has_more is False
    before = await ac.models.list(limit=5, before_id="m10")
    assert [m.id for m in before.data] == names[5:10]
    assert before.has_more is True
    back = [m.id async for m in ac.models.list(limit=4, before_id="m10")]
    assert back == names[6:10] + names[2:6] + names[:2]  # pages backwards, before_id = first_id
    whole = await ac.models.list(limit=1000)
    assert len(whole.data) == 45 and whole.has_more is False


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("after_id=zzz", "after_id"),
        ("after_id=m01&before_id=m03", "before_id"),
    ],
)
async def test_anthropic_list_refuses_a_bad_query_in_anthropics_shape(
    fake_engine, gateway, query: str, param: str
) -> None:
    vllm = await fake_engine("vllm", models=["m01", "m02", "m03"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    status, _, raw = await get(url, f"/v1/models?{query}", headers=ANTHROPIC_HEADERS)
    assert status == 400, raw
    body = json.loads(raw)
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith(f"{param}: ")


async def test_openai_sdk_lists_models_and_aliases(fake_engine, gateway, clients) -> None:
    names = [f"m{i:02d}" for i in range(25)]
    vllm = await fake_engine("vllm", models=names)
    _gw, url = await gateway(backends=[backend("vllm", vllm)], aliases={"best": ["m01"]})
    listing = [m async for m in clients("openai", url).models.list()]
    assert [m.id for m in listing] == [*names, "best"]  # OpenAI's list is one page
    assert {m.object for m in listing} == {"model"}


async def test_a_missing_key_on_the_model_routes_is_answered_in_the_clients_dialect(
    fake_engine, gateway, clients
) -> None:
    vllm = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(
        backends=[backend("vllm", vllm)], env={"MODELPORT_API_KEY": "sk-gw-0123456789abcdef"}
    )
    with pytest.raises(anthropic.AuthenticationError) as refused:
        await clients("anthropic", url, key="wrong").models.retrieve("qwen")
    assert refused.value.body["type"] == "error"  # Anthropic's body, not OpenAI's
    assert refused.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError) as denied:
        await clients("openai", url, key="wrong").models.list()
    assert denied.value.body["type"] == "authentication_error"
    assert (await clients("anthropic", url, key="sk-gw-0123456789abcdef").models.list()).data
