"""Ollama's metadata and embeddings routes, with the `ollama` Python library as the client
(issue 10, point 1): list, show, ps, embed (one and many inputs), embeddings, GET and HEAD /,
over an OpenAI-compatible engine fake (vLLM), an Ollama fake and the mock backend.

What Ollama answers is from ollama/ollama's server/routes.go and api/types.go (docs/wire.md,
"Ollama's API as served to clients"); what the library sends is in
docs/captures/clients/ollama-py-*.jsonl (the root and version calls go through the
library's own HTTP client, as docs/captures/clients/capture.sh makes them).
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import ollama
import pytest

from tests.fakes import fake_vector
from tests.gateway.helpers import backend, get, post, sample, scrape

VERSION = "0.32.15"  # the newest Ollama release when its API was read (wire/ollama/models.py)
EMBED = "nomic-embed-text:latest"  # an embedding model to the Ollama fake (tests/fakes/catalog.py)
MOCK = '[[backends]]\nkind = "mock"\nname = "scripted"\n'


async def _engines(fake_engine: Any, gateway: Any, **kw: Any) -> tuple[Any, Any, str]:
    vllm = await fake_engine("vllm", models=["qwen"], context_window=8192)
    box = await fake_engine("ollama", models=["llama3.2:latest", EMBED])
    _gw, url = await gateway(
        MOCK,
        backends=[backend("vllm", vllm, name="gpu"), backend("ollama", box, name="box")],
        aliases={"fast": ["qwen"]},
        **kw,
    )
    return vllm, box, url


@pytest.fixture
async def ollama_client() -> AsyncIterator[Callable[..., ollama.AsyncClient]]:
    """`client = ollama_client(url, headers=...)`: the library's client, closed at teardown."""
    made: list[ollama.AsyncClient] = []

    def make(url: str, **kw: Any) -> ollama.AsyncClient:
        client = ollama.AsyncClient(host=url, timeout=10, **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


def _norm(vector: Any) -> float:
    return math.sqrt(sum(v * v for v in vector))


async def test_list_names_every_model_and_alias_with_ollamas_own_details(
    fake_engine, gateway, ollama_client
) -> None:
    _, _, url = await _engines(fake_engine, gateway)
    listed = (await ollama_client(url).list()).models
    by_name = {m.model: m for m in listed}
    assert set(by_name) == {"qwen", "llama3.2:latest", EMBED, "mock-model", "fast"}
    # The Ollama engine's own tags entry: size, digest, details.
    llama = by_name["llama3.2:latest"]
    assert llama.size == 2019393189 and llama.details.family == "llama3"
    assert llama.details.quantization_level == "Q4_K_M"
    # Other engines: what is known, blank where nothing is; dates and digests parse.
    qwen = by_name["qwen"]
    assert qwen.modified_at is not None and len(qwen.digest) == 64
    assert by_name["fast"].digest == qwen.digest  # an alias is its model under another name


async def test_show_has_the_context_length_and_capabilities_ollama_clients_read(
    fake_engine, gateway, ollama_client
) -> None:
    _, _, url = await _engines(fake_engine, gateway)
    client = ollama_client(url)
    qwen = await client.show("qwen")
    arch = qwen.modelinfo["general.architecture"]
    assert qwen.modelinfo[f"{arch}.context_length"] == 8192
    assert qwen.capabilities is not None
    assert {"completion", "tools"} <= set(qwen.capabilities)
    assert qwen.modified_at is not None and qwen.details is not None
    llama = await client.show("llama3.2:latest")
    assert llama.modelinfo["general.architecture"] == "llama3"
    assert llama.modelinfo["llama3.context_length"] == 4096  # the runtime one, from /api/ps
    mock = await client.show("mock-model")
    assert mock.capabilities == ["completion", "embedding"]
    assert mock.modelinfo[f"{mock.modelinfo['general.architecture']}.context_length"] == 4096
    fast = await client.show("fast")  # an alias shows the model it names
    assert fast.modelinfo == {**qwen.modelinfo}


async def test_show_of_an_unknown_model_is_ollamas_404(fake_engine, gateway, ollama_client) -> None:
    _, _, url = await _engines(fake_engine, gateway)
    with pytest.raises(ollama.ResponseError) as caught:
        await ollama_client(url).show("qwem")
    assert caught.value.status_code == 404
    assert caught.value.error.startswith("model 'qwem' not found")
    status, headers, raw = await post(url, "/api/show", {})
    assert status == 400 and headers["Content-Type"].startswith("application/json")
    assert json.loads(raw) == {"error": "model: field required"}
    status, _, raw = await post(url, "/api/show", {"name": "qwen"})  # the older field
    assert status == 200 and "model_info" in json.loads(raw)


async def test_ps_lists_what_engines_hold_in_memory(fake_engine, gateway, ollama_client) -> None:
    _, _, url = await _engines(fake_engine, gateway)
    loaded = {m.model: m for m in (await ollama_client(url).ps()).models}
    # vLLM and the mock cannot say and are ready: everything they serve is in memory; the
    # Ollama fake's /api/ps names its running model.
    assert set(loaded) == {"qwen", "llama3.2:latest", EMBED, "mock-model"}
    assert loaded["qwen"].context_length == 8192
    assert loaded["llama3.2:latest"].size == 2019393189
    assert loaded["qwen"].expires_at is not None and loaded["qwen"].expires_at.year > 2100


async def test_ps_leaves_out_a_model_the_ollama_engine_has_not_loaded(
    fake_engine, gateway, ollama_client
) -> None:
    box = await fake_engine("ollama", models=["a:latest", "b:latest"], not_loaded=["b:latest"])
    _gw, url = await gateway(backends=[backend("ollama", box)])
    assert [m.model for m in (await ollama_client(url).ps()).models] == ["a:latest"]


async def test_root_and_version_answer_as_ollama(fake_engine, gateway, ollama_client) -> None:
    _, _, url = await _engines(fake_engine, gateway, env={"MODELPORT_API_KEY": "sk-gw-0123456789"})
    client = ollama_client(url, headers={"Authorization": "Bearer sk-gw-0123456789"})
    for method in ("HEAD", "GET"):
        # `/` needs no key: it is a liveness answer, like /health.
        answer = await ollama_client(url)._client.request(method, "/")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/plain; charset=utf-8"
        assert answer.text == ("Ollama is running" if method == "GET" else "")
    version = await client._client.get("/api/version")
    assert version.json() == {"version": VERSION}
    assert (await client._client.head("/api/version")).status_code == 200
    # Every other route wants the key, and says so in Ollama's shape.
    with pytest.raises(ollama.ResponseError) as caught:
        await ollama_client(url).list()
    assert caught.value.status_code == 401
    assert (await client.list()).models


@pytest.mark.parametrize("model", ["qwen", EMBED, "mock-model", "fast"])
async def test_embed_one_and_many_inputs_on_every_engine(
    fake_engine, gateway, model: str, ollama_client
) -> None:
    _, _, url = await _engines(fake_engine, gateway)
    client = ollama_client(url)
    one = await client.embed(model, input="one")
    assert one.model == model and len(one.embeddings) == 1
    assert _norm(one.embeddings[0]) == pytest.approx(1.0)  # Ollama answers unit vectors
    assert isinstance(one.total_duration, int) and isinstance(one.load_duration, int)
    assert one.total_duration >= one.load_duration >= 0
    assert one.prompt_eval_count is not None and one.prompt_eval_count > 0
    many = await client.embed(model, input=["one", "two", "three"], truncate=True, dimensions=3)
    assert [len(v) for v in many.embeddings] == [3, 3, 3]
    assert all(_norm(v) == pytest.approx(1.0) for v in many.embeddings)
    # The same text embeds the same, cut to 3 and normalised again.
    first = [v / _norm(one.embeddings[0][:3]) for v in one.embeddings[0][:3]]
    assert many.embeddings[0] == pytest.approx(first)


async def test_embed_asks_the_engine_once_for_all_inputs_and_keeps_ollama_fields_home(
    fake_engine, gateway, ollama_client
) -> None:
    vllm, box, url = await _engines(fake_engine, gateway)
    await ollama_client(url).embed(
        "qwen", input=["a", "b"], dimensions=2, keep_alive="5m", options={"num_ctx": 512}
    )
    await ollama_client(url).embed(EMBED, input=["a"], truncate=False)
    (sent,) = [r.json for r in vllm.requests if r.path.endswith("/embeddings")]
    assert sent == {"model": "qwen", "input": ["a", "b"]}
    (native,) = [r.json for r in box.requests if r.path == "/api/embed"]
    assert native == {"model": EMBED, "input": ["a"]}


async def test_legacy_embeddings_is_the_engines_vector(fake_engine, gateway, ollama_client) -> None:
    _, _, url = await _engines(fake_engine, gateway)
    client = ollama_client(url)
    answer = await client.embeddings("qwen", prompt="one")
    assert list(answer.embedding) == pytest.approx(fake_vector("one"))  # not normalised
    assert (await client.embeddings(EMBED, prompt="one")).embedding
    status, _, raw = await post(url, "/api/embeddings", {"model": "qwen", "prompt": ""})
    assert (status, json.loads(raw)) == (200, {"embedding": []})


async def test_embed_refusals_are_ollamas_shape(fake_engine, gateway, ollama_client) -> None:
    vllm, _, url = await _engines(fake_engine, gateway)
    with pytest.raises(ollama.ResponseError) as caught:
        await ollama_client(url).embed("nope", input="one")
    assert caught.value.status_code == 404
    assert caught.value.error.startswith("model 'nope' not found")
    status, _, raw = await post(url, "/api/embed", {"model": "qwen", "input": [1, 2]})
    assert status == 400
    expected = "input: expected a string or an array of strings, got array"
    assert json.loads(raw) == {"error": expected}
    status, _, raw = await post(url, "/api/embed", {"model": "qwen", "input": "x", "truncate": 1})
    assert (status, json.loads(raw)) == (400, {"error": "truncate: expected a boolean, got number"})
    # No input is an empty answer, as Ollama gives, and no engine is asked.
    status, _, raw = await post(url, "/api/embed", {"model": "qwen", "input": []})
    assert (status, json.loads(raw)["embeddings"]) == (200, [])
    assert not [r for r in vllm.requests if r.path.endswith("/embeddings")]


async def test_openapi_lists_the_ollama_and_model_routes(fake_engine, gateway) -> None:
    _, _, url = await _engines(fake_engine, gateway)
    _status, _, raw = await get(url, "/openapi.json")
    paths = json.loads(raw)["paths"]
    for path in ("/", "/api/version", "/api/tags", "/api/show", "/api/ps", "/api/embed"):
        assert path in paths, path
    assert {"/api/embeddings", "/v1/models/{model_id}"} <= set(paths)


async def test_an_ollama_embed_is_metered_as_the_ollama_dialect(
    fake_engine, gateway, ollama_client
) -> None:
    vllm, _, url = await _engines(fake_engine, gateway)
    await ollama_client(url).embed("qwen", input=["one", "two"])
    _status, _, text = await get(url, "/metrics")
    s = scrape(text.decode())
    labels = {"model": "qwen", "backend": f"vllm:{vllm.url}", "status": "200", "format": "ollama"}
    assert sample(s, "modelport_requests_total", **labels) == 1
