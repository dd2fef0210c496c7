"""POST /v1/completions (OpenAI's legacy completions) through the gateway: relayed to the
engines that serve it, over the openai SDK's `completions.create` (issue 10, point 2)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import openai
import pytest

from modelport.gateway.ledger import usage_totals
from tests.fakes import Reply
from tests.gateway.helpers import backend, post

PROMPT = "def add(a, b):"
SUFFIX = "\n    return c\n"
CODER = "qwen2.5-coder:1.5b"  # Ollama lists names with a tag


def completion_requests(fake):  # type: ignore[no-untyped-def]
    return [r for r in fake.requests if r.path.endswith("/completions") and "chat" not in r.path]


async def test_sdk_whole_and_streamed_over_llama_server(
    fake_engine, gateway, clients, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modelport.access")
    llama = await fake_engine("llamacpp", models=["gemma.gguf"])
    llama.default_reply = Reply(text="\n    return a + b", usage=(8, 6), finish_reason="length")
    gw, url = await gateway(backends=[backend("llamacpp", llama)])
    oc = clients("openai", url)

    raw = await oc.completions.with_raw_response.create(
        model="gemma.gguf", prompt=PROMPT, max_tokens=6, temperature=0, stop=["\n\n"]
    )
    whole = raw.parse()
    assert raw.headers["x-modelport-backend"] == f"llamacpp:{llama.url}"
    assert whole.object == "text_completion"
    assert whole.choices[0].text == "\n    return a + b"
    assert whole.choices[0].finish_reason == "length"
    assert (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (8, 6)

    stream = await oc.completions.create(model="gemma.gguf", prompt=PROMPT, stream=True)
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "\n    return a + b"
    assert chunks[-1].choices[0].finish_reason == "length"

    sent = completion_requests(llama)
    assert [r.path for r in sent] == ["/v1/completions", "/v1/completions"]
    # Passthrough: the client's body as it came; a stream also asks for usage (the meter's).
    assert sent[0].json == {
        "model": "gemma.gguf",
        "prompt": PROMPT,
        "max_tokens": 6,
        "temperature": 0,
        "stop": ["\n\n"],
    }
    assert sent[1].json["stream_options"] == {"include_usage": True}

    fields = [json.loads(r.getMessage()) for r in caplog.records if r.name == "modelport.access"]
    assert [(f["endpoint"], f["stream"], f["passthrough"]) for f in fields] == [
        ("completions", False, True),
        ("completions", True, True),
    ]
    assert [(f["tokens_in"], f["tokens_out"]) for f in fields] == [(8, 6), (8, 6)]
    await gw.stop(grace_s=0)
    (row,) = usage_totals(tmp_path / "usage.sqlite3", by="model")
    assert (row.requests, row.input_tokens, row.output_tokens) == (2, 16, 12)


async def test_vllm_usage_chunk_only_for_clients_that_asked(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["qwen"])
    vllm.default_reply = Reply(text="one two three", usage=(5, 3))
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    oc = clients("openai", url)

    quiet = [c async for c in await oc.completions.create(model="qwen", prompt="x", stream=True)]
    assert all(c.choices for c in quiet)  # the usage chunk we asked for was kept back
    assert "".join(c.choices[0].text for c in quiet) == "one two three"

    asked = await oc.completions.create(
        model="qwen", prompt="x", stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in asked]
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (5, 3)

    # Prompts in every shape OpenAI takes reach the engine as sent.
    for prompt in (["a", "b"], [9906, 1917], [[9906, 1917], [17]]):
        await oc.completions.create(model="qwen", prompt=prompt, max_tokens=2)
        assert completion_requests(vllm)[-1].json["prompt"] == prompt


async def test_suffix_goes_to_an_engine_that_fills_in_the_middle(
    fake_engine, gateway, clients
) -> None:
    """llama-server ignores `suffix` and vLLM refuses it: with both first in line, the
    fill-in-the-middle request goes to Ollama, which honours it; a plain one stays first."""
    llama = await fake_engine("llamacpp", models=[CODER])
    vllm = await fake_engine("vllm", models=[CODER])
    ollama = await fake_engine("ollama", models=[CODER])
    ollama.default_reply = Reply(text="c = a + b", usage=(9, 4))
    _gw, url = await gateway(
        backends=[
            backend("llamacpp", llama, priority=9),
            backend("vllm", vllm, priority=8),
            backend("ollama", ollama),
        ]
    )
    oc = clients("openai", url)

    raw = await oc.completions.with_raw_response.create(
        model=CODER, prompt=PROMPT, suffix=SUFFIX, max_tokens=8
    )
    assert raw.headers["x-modelport-backend"] == f"ollama:{ollama.url}"
    assert raw.parse().choices[0].text == "c = a + b"
    (sent,) = completion_requests(ollama)
    assert sent.json["suffix"] == SUFFIX
    assert completion_requests(llama) == completion_requests(vllm) == []

    stream = await oc.completions.create(
        model=CODER,
        prompt=PROMPT,
        suffix=SUFFIX,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "c = a + b"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 9

    # No suffix (or an empty one, the cursor at the end of a file): the first engine serves.
    raw = await oc.completions.with_raw_response.create(model=CODER, prompt=PROMPT, suffix="")
    assert raw.headers["x-modelport-backend"] == f"llamacpp:{llama.url}"


async def test_suffix_no_engine_honours_is_a_400_naming_model_and_field(
    fake_engine, gateway, clients
) -> None:
    llama = await fake_engine("llamacpp", models=["gemma"])
    _gw, url = await gateway(backends=[backend("llamacpp", llama)])
    oc = clients("openai", url)
    with pytest.raises(openai.BadRequestError) as err:
        await oc.completions.create(model="gemma", prompt=PROMPT, suffix=SUFFIX)
    message = err.value.body["message"]
    assert "'gemma'" in message and "`suffix`" in message and "llama-server" in message
    assert err.value.body["type"] == "invalid_request_error"
    assert completion_requests(llama) == []  # refused before the engine saw it
    # `echo` too (llama-server answers without the prompt); `echo: false` asks for nothing.
    with pytest.raises(openai.BadRequestError) as err:
        await oc.completions.create(model="gemma", prompt=PROMPT, echo=True)
    assert "`echo`" in err.value.body["message"]
    await oc.completions.create(model="gemma", prompt=PROMPT, echo=False)
    assert len(completion_requests(llama)) == 1


async def test_fallback_to_a_second_engine(fake_engine, gateway, clients) -> None:
    first = await fake_engine("vllm", models=["qwen"])
    first.default_reply = Reply(status=503, error_message="overloaded")
    second = await fake_engine("llamacpp", models=["qwen"])
    second.default_reply = Reply(text="from the second", usage=(3, 3))
    _gw, url = await gateway(
        backends=[backend("vllm", first, priority=5), backend("llamacpp", second)]
    )
    oc = clients("openai", url)
    raw = await oc.completions.with_raw_response.create(model="qwen", prompt="x")
    assert raw.headers["x-modelport-backend"] == f"llamacpp:{second.url}"
    assert raw.parse().choices[0].text == "from the second"
    assert len(completion_requests(first)) == 1


async def test_a_model_only_anthropic_serves_is_a_400_naming_it(
    fake_engine, gateway, clients
) -> None:
    claude = await fake_engine("anthropic", models=["claude-x"], api_key="k")
    _gw, url = await gateway(
        backends=[backend("anthropic", claude, api_key_env="K")], env={"K": "k"}
    )
    oc = clients("openai", url)
    with pytest.raises(openai.BadRequestError) as err:
        await oc.completions.create(model="claude-x", prompt="Hello")
    body = err.value.body
    assert body["type"] == "invalid_request_error" and body["param"] == "model"
    assert "'claude-x'" in body["message"] and "/v1/completions" in body["message"]
    assert "anthropic" in body["message"]
    assert [r for r in claude.requests if r.method == "POST"] == []


async def test_alias_renames_the_model_both_ways(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)], aliases={"fast": ["qwen"]})
    oc = clients("openai", url)
    whole = await oc.completions.create(model="fast", prompt="x")
    assert whole.model == "fast"
    assert completion_requests(vllm)[-1].json["model"] == "qwen"
    chunks = [c async for c in await oc.completions.create(model="fast", prompt="x", stream=True)]
    assert completion_requests(vllm)[-1].json["model"] == "qwen"
    assert chunks


async def test_a_stream_failing_midway_ends_with_an_error_event(
    fake_engine, gateway, clients
) -> None:
    vllm = await fake_engine("vllm", models=["qwen"])
    vllm.default_reply = Reply(
        text="partial answer here", chunk_chars=3, fail_after_chunks=2, error_message="engine died"
    )
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    oc = clients("openai", url)
    stream = await oc.completions.create(model="qwen", prompt="x", stream=True)
    got: list[str] = []
    with pytest.raises(openai.APIError) as err:
        async for chunk in stream:
            got.append(chunk.choices[0].text)
    assert "".join(got) == "partia"  # two chunks of three characters, then the failure
    assert "engine died" in str(err.value.message)


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ([1, 2], None, "must be a JSON object"),
        ({"prompt": "x"}, "model", "field required"),
        ({"model": 7, "prompt": "x"}, "model", "expected a string"),
        ({"model": "m"}, "prompt", "field required"),
        ({"model": "m", "prompt": {"a": 1}}, "prompt", "expected a string, an array"),
        ({"model": "m", "prompt": []}, "prompt", "must not be empty"),
        ({"model": "m", "prompt": ["a", 2]}, "prompt[1]", "expected a string"),
        ({"model": "m", "prompt": [1, -2]}, "prompt[1]", "expected a token id"),
        ({"model": "m", "prompt": [[1], "a"]}, "prompt[1]", "expected an array of token ids"),
        ({"model": "m", "prompt": "x", "stream": "yes"}, "stream", "expected a boolean"),
        ({"model": "m", "prompt": "x", "suffix": 3}, "suffix", "expected a string"),
    ],
)
async def test_malformed_bodies_never_reach_an_engine(
    fake_engine, gateway, body, param, words
) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    status, _, raw = await post(url, "/v1/completions", body)
    assert status == 400
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param and words in error["message"]
    assert completion_requests(vllm) == []
