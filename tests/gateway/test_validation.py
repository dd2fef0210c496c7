"""The gateway refuses invalid requests before forwarding them, in the client's shape."""

from __future__ import annotations

import base64
import json

import anthropic
import openai
import pytest

from tests.gateway.helpers import HI, backend, chat_requests, post

# == 3. validation before forwarding ===========================================================

OPENAI_BAD = [
    (b"{not json", None),
    (json.dumps({"model": "qwen", "messages": "bad"}).encode(), "messages"),
    (json.dumps({"messages": HI}).encode(), "model"),
    (json.dumps({"model": "qwen", "messages": HI, "temperature": "hot"}).encode(), "temperature"),
    (json.dumps({"model": "qwen", "messages": HI, "max_tokens": "10"}).encode(), "max_tokens"),
    (json.dumps({"model": "qwen", "messages": HI, "stream": "yes"}).encode(), "stream"),
    (json.dumps({"model": "qwen", "messages": [{"role": "user"}]}).encode(), "messages[0]"),
    (json.dumps(["model", "qwen"]).encode(), None),
]
ANTHROPIC_BAD = [
    (b"{not json", None),
    (json.dumps({"model": "qwen", "max_tokens": 5, "messages": "bad"}).encode(), "messages"),
    (json.dumps({"max_tokens": 5, "messages": HI}).encode(), "model"),
    (json.dumps({"model": "qwen", "messages": HI}).encode(), "max_tokens"),
    (json.dumps({"model": "qwen", "max_tokens": "5", "messages": HI}).encode(), "max_tokens"),
    (
        json.dumps({"model": "qwen", "max_tokens": 5, "messages": HI, "temperature": "x"}).encode(),
        "temperature",
    ),
    (json.dumps({"model": "qwen", "max_tokens": 5, "messages": [{"role": 3}]}).encode(), "role"),
]


@pytest.mark.parametrize(("body", "field"), OPENAI_BAD)
async def test_openai_invalid_requests_are_refused_before_forwarding(
    fake_engine, gateway, body: bytes, field: str | None
) -> None:
    vllm = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    status, headers, raw = await post(url, "/v1/chat/completions", data=body)
    assert status == 400, raw
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error"
    assert headers["x-request-id"]
    if field is not None:
        assert error["param"] == field or error["param"].startswith(field), error
        assert field.split("[")[0] in error["message"]
    assert chat_requests(vllm) == []


@pytest.mark.parametrize(("body", "field"), ANTHROPIC_BAD)
async def test_anthropic_invalid_requests_are_refused_before_forwarding(
    fake_engine, gateway, body: bytes, field: str | None
) -> None:
    llama = await fake_engine("llamacpp", models=["qwen"])
    _gw, url = await gateway(backends=[backend("llamacpp", llama)])
    status, _headers, raw = await post(url, "/v1/messages", data=body)
    assert status == 400, raw
    payload = json.loads(raw)
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "invalid_request_error"
    if field is not None:
        assert field in payload["error"]["message"], payload
    assert chat_requests(llama) == []


async def test_invalid_request_through_the_sdks(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    with pytest.raises(openai.BadRequestError) as caught:
        await clients("openai", url).chat.completions.create(
            model="qwen",
            messages="bad",  # type: ignore[arg-type]
        )
    assert caught.value.status_code == 400
    assert caught.value.param == "messages"
    with pytest.raises(anthropic.BadRequestError) as err:
        await clients("anthropic", url).messages.create(
            model="qwen",
            max_tokens=5,
            messages="bad",  # type: ignore[arg-type]
        )
    assert err.value.body["error"]["type"] == "invalid_request_error"
    assert chat_requests(vllm) == []


async def test_body_over_the_cap_is_413_in_each_shape(fake_engine, gateway) -> None:
    vllm = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)], server={"max_body_mb": 0.01})
    big = [{"role": "user", "content": "x" * 20_000}]

    status, _, raw = await post(url, "/v1/chat/completions", {"model": "qwen", "messages": big})
    assert status == 413, raw
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error"
    assert "too large" in error["message"]

    status, _, raw = await post(
        url, "/v1/messages", {"model": "qwen", "max_tokens": 5, "messages": big}
    )
    assert status == 413, raw
    payload = json.loads(raw)
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "request_too_large"
    assert chat_requests(vllm) == []
    # Under the cap still works.
    status, _, raw = await post(url, "/v1/chat/completions", {"model": "qwen", "messages": HI})
    assert status == 200, raw


async def test_unknown_model_is_404_with_a_suggestion(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["qwen-coder"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])

    with pytest.raises(openai.NotFoundError) as caught:
        await clients("openai", url).chat.completions.create(model="qwen-codr", messages=HI)
    body = caught.value.body
    assert body["code"] == "model_not_found"
    assert "did you mean 'qwen-coder'" in body["message"]

    with pytest.raises(anthropic.NotFoundError) as err:
        await clients("anthropic", url).messages.create(
            model="qwen-codr", max_tokens=5, messages=HI
        )
    assert err.value.body["type"] == "error"
    assert err.value.body["error"]["type"] == "not_found_error"
    assert "did you mean 'qwen-coder'" in err.value.body["error"]["message"]

    status, _, raw = await post(url, "/v1/embeddings", {"model": "qwen-codr", "input": "hello"})
    assert status == 404
    assert "did you mean 'qwen-coder'" in json.loads(raw)["error"]["message"]
    assert chat_requests(vllm) == []


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()


# Known text-only: LM Studio's list says `type: "llm"`, llama-server's /props says
# `modalities.vision: false`. (LocalAI says nothing either way: tests/gateway/test_vision.py.)
@pytest.mark.parametrize("kind", ["lmstudio", "llamacpp"])
async def test_images_to_a_text_only_model_are_400(fake_engine, gateway, kind: str) -> None:
    fake = await fake_engine(kind, models=["text-only"])
    _gw, url = await gateway(backends=[backend(kind, fake)])
    openai_body = {
        "model": "text-only",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            }
        ],
    }
    status, _, raw = await post(url, "/v1/chat/completions", openai_body)
    assert status == 400, raw
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error"
    assert "image" in error["message"]

    anthropic_body = {
        "model": "text-only",
        "max_tokens": 10,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {"type": "text", "text": "what is this?"},
                ],
            }
        ],
    }
    status, _, raw = await post(url, "/v1/messages", anthropic_body)
    assert status == 400, raw
    payload = json.loads(raw)
    assert payload["error"]["type"] == "invalid_request_error"
    assert "image" in payload["error"]["message"]
    assert chat_requests(fake) == []
