"""Embeddings with token-id input (issue 10, point 4): carried to engines that take token
ids, refused by name where the engine embeds text only; base64 (the openai SDK's default)."""

from __future__ import annotations

import base64
import json
import struct

import openai
import pytest

from tests.fakes import fake_vector
from tests.gateway.helpers import backend, post

TOKENS = [[9906, 1917], [17]]


def embed_requests(fake):  # type: ignore[no-untyped-def]
    return [r for r in fake.requests if r.path.endswith(("/embeddings", "/api/embed"))]


@pytest.mark.parametrize("kind", ["llamacpp", "vllm", "openai"])
async def test_token_ids_reach_engines_that_take_them(kind, fake_engine, gateway, clients) -> None:
    fake = await fake_engine(kind, models=["embed-1"], api_key="k")
    _gw, url = await gateway(backends=[backend(kind, fake, api_key_env="K")], env={"K": "k"})
    oc = clients("openai", url)

    # The SDK's default encoding is base64: floats come back packed, and decode to the same.
    result = await oc.embeddings.create(model="embed-1", input=TOKENS)
    assert [d.embedding for d in result.data] == [
        pytest.approx(fake_vector(json.dumps(t, separators=(",", ":"))), abs=1e-6) for t in TOKENS
    ]
    assert embed_requests(fake)[-1].json["input"] == TOKENS

    # One token-id array is one input.
    status, _, raw = await post(
        url,
        "/v1/embeddings",
        {"model": "embed-1", "input": [9906, 1917], "encoding_format": "base64"},
    )
    assert status == 200
    (item,) = json.loads(raw)["data"]
    packed = base64.b64decode(item["embedding"])
    assert list(struct.unpack("<8f", packed)) == pytest.approx(fake_vector("[9906,1917]"), abs=1e-6)
    assert embed_requests(fake)[-1].json["input"] == [[9906, 1917]]


async def test_ollama_takes_text_only_so_token_ids_go_elsewhere(
    fake_engine, gateway, clients
) -> None:
    ollama = await fake_engine("ollama", models=["nomic-embed-text:latest"])
    vllm = await fake_engine("vllm", models=["nomic-embed-text:latest"])
    _gw, url = await gateway(
        backends=[backend("ollama", ollama, priority=9), backend("vllm", vllm)],
        aliases={"only-ollama": ["ollama/nomic-embed-text:latest"]},
    )
    oc = clients("openai", url)

    raw = await oc.embeddings.with_raw_response.create(
        model="nomic-embed-text:latest", input=TOKENS, encoding_format="float"
    )
    assert raw.headers["x-modelport-backend"] == f"vllm:{vllm.url}"
    assert len(raw.parse().data) == 2
    assert embed_requests(ollama) == []  # passed over before any I/O

    # Text still goes to Ollama first.
    raw = await oc.embeddings.with_raw_response.create(
        model="nomic-embed-text:latest", input="hello", encoding_format="float"
    )
    assert raw.headers["x-modelport-backend"] == f"ollama:{ollama.url}"

    # Nothing else serves it: a 400 naming the model and the field.
    with pytest.raises(openai.BadRequestError) as err:
        await oc.embeddings.create(model="only-ollama", input=[[1, 2]])
    body = err.value.body
    assert body["type"] == "invalid_request_error"
    assert "'only-ollama'" in body["message"] and "`input`" in body["message"]
    assert "text only" in body["message"]
    assert len(embed_requests(ollama)) == 1  # only the text request above


@pytest.mark.parametrize(
    ("value", "param"),
    [
        ([], "input"),
        ([1, "a"], "input[1]"),
        (["a", 1], "input[1]"),
        ([[1, 2], []], "input[1]"),
        ([[1, -2]], "input[0][1]"),
        ([[1, True]], "input[0][1]"),
        ({"a": 1}, "input"),
    ],
)
async def test_malformed_input_is_a_400_naming_it(value, param, fake_engine, gateway) -> None:
    vllm = await fake_engine("vllm", models=["embed-1"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    status, _, raw = await post(url, "/v1/embeddings", {"model": "embed-1", "input": value})
    assert status == 400
    assert json.loads(raw)["error"]["param"] == param
    assert embed_requests(vllm) == []
