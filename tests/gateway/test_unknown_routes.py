"""An unknown route answers 404 in its path's dialect, typed as the client's fault (not a
server error), so SDKs raise their not-found error rather than report a broken server."""

from __future__ import annotations

import aiohttp
import pytest

from tests.gateway.helpers import backend


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/v1/nope", "invalid_request_error"),
        ("/v1/chat/completions/extra", "invalid_request_error"),
        ("/v1/responses/resp_123/cancel", "invalid_request_error"),
        ("/v1/messages/batches", "not_found_error"),
    ],
)
async def test_an_unknown_route_is_a_404_in_its_dialect(
    fake_engine, gateway, path: str, kind: str
) -> None:
    vllm = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + path, json={}) as response,
    ):
        assert response.status == 404
        body = await response.json()
    error = body["error"]
    assert error["type"] == kind
    assert f"POST {path}" in error["message"]
    if kind == "not_found_error":
        assert body["type"] == "error"  # Anthropic's envelope


async def test_the_openai_sdk_sees_not_found(fake_engine, gateway, clients) -> None:
    import openai

    vllm = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    client = clients("openai", url)
    with pytest.raises(openai.NotFoundError) as caught:
        await client.post("/nope", cast_to=dict, body={})
    assert caught.value.body["type"] == "invalid_request_error"  # type: ignore[index]


@pytest.mark.parametrize("path", ["/api/nope", "/api/chat/extra"])
async def test_an_unknown_route_under_api_is_ollamas_error_shape(
    fake_engine, gateway, path: str
) -> None:
    vllm = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + path, json={}) as response,
    ):
        assert response.status == 404
        body = await response.json()
    assert body == {"error": f"no route POST {path}"}
