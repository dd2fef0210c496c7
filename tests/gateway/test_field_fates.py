"""Request fields on transcoding paths, end to end: refused by name, carried, mapped or
dropped by name as docs/fields.md says, never dropped in silence (issue 10, point 7).

The engines are protocol fakes (tests/fakes): the Anthropic fake answers as /v1/messages
does, LocalAI's as an OpenAI-only chat-completions server, Ollama's as its native /api/chat.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from modelport.types import WireFormat
from modelport.wire import codec_for
from modelport.wire.fields import Fate, Target
from tests.fakes import Reply
from tests.gateway.helpers import HI, backend, chat_requests, post

# The engine kind that each target is reached through, with a model it lists.
ENGINES: dict[Target, tuple[str, str]] = {
    Target.OPENAI: ("localai", "tiny"),
    Target.ANTHROPIC: ("anthropic", "claude-x"),
    Target.OLLAMA: ("ollama", "qwen3:0.6b"),
}
PATHS = {
    WireFormat.OPENAI: "/v1/chat/completions",
    WireFormat.ANTHROPIC: "/v1/messages",
    WireFormat.RESPONSES: "/v1/responses",
}


def _base(fmt: WireFormat, model: str) -> dict[str, Any]:
    if fmt is WireFormat.RESPONSES:
        return {"model": model, "input": "hi"}
    body: dict[str, Any] = {"model": model, "messages": HI}
    if fmt is WireFormat.ANTHROPIC:
        body["max_tokens"] = 16
    return body


async def _gateway_to(target: Target, fake_engine: Any, gateway: Any) -> tuple[Any, str, str]:
    kind, model = ENGINES[target]
    extra: dict[str, Any] = {"api_key": "k"} if kind == "anthropic" else {}
    # A window agents' long prompts fit in (Claude Code's system prompt alone is ~4k tokens).
    fake = await fake_engine(kind, models=[model], context_window=200_000, **extra)
    conf: dict[str, Any] = {"api_key_env": "K"} if kind == "anthropic" else {}
    _gw, url = await gateway(backends=[backend(kind, fake, **conf)], env={"K": "k"})
    return fake, url, model


# -- the three fields, with the openai SDK as the client --------------------------


@pytest.mark.parametrize(("field", "value"), [("n", 2), ("logprobs", True), ("top_logprobs", 2)])
async def test_openai_client_on_anthropic_engine_is_refused_naming_the_field(
    field: str, value: Any, fake_engine: Any, gateway: Any, clients: Any
) -> None:
    claude, url, model = await _gateway_to(Target.ANTHROPIC, fake_engine, gateway)
    oc = clients("openai", url)
    kwargs: dict[str, Any] = {field: value}
    if field == "top_logprobs":
        kwargs["logprobs"] = False  # top_logprobs alone is still refused: it asks for them
    with pytest.raises(openai.BadRequestError) as caught:
        await oc.chat.completions.create(model=model, messages=HI, **kwargs)
    err = caught.value
    assert err.status_code == 400
    assert err.body["param"] == field
    assert err.body["code"] == "unsupported"
    assert err.body["type"] == "invalid_request_error"
    assert err.body["message"].startswith(f"{field}: {json.dumps(value)} is not supported by ")
    assert "anthropic" in err.body["message"]
    assert chat_requests(claude) == []  # refused before the engine was asked

    # Streams too: refused before the first byte, as a plain 400.
    with pytest.raises(openai.BadRequestError):
        await oc.chat.completions.create(model=model, messages=HI, stream=True, **kwargs)

    # The values that ask for nothing go through, and reach the engine as nothing.
    claude.replies.append(Reply(text="one"))
    done = await oc.chat.completions.create(
        model=model, messages=HI, n=1, logprobs=False, top_logprobs=0
    )
    assert done.choices[0].message.content == "one"
    sent = chat_requests(claude)[-1].json
    assert not {"n", "logprobs", "top_logprobs"} & set(sent)


# -- every refused row of every table, on every engine a gateway transcodes to -------------


def _refused(fmt: WireFormat, target: Target) -> list[tuple[str, Any]]:
    table = codec_for(fmt).fields
    assert table is not None
    return [
        (r.path, r.example)
        for r in table.top_level()
        if r.passthrough.fate is not Fate.REFUSED and r.to[target].fate is Fate.REFUSED
    ]


# The (client dialect, target) pairs the gateway transcodes today; OpenAI and Anthropic
# clients on Ollama are relayed to its /v1 (tests/wire/test_fields.py covers those cells).
PAIRS = [
    (WireFormat.OPENAI, Target.ANTHROPIC),
    (WireFormat.ANTHROPIC, Target.OPENAI),
    (WireFormat.RESPONSES, Target.OPENAI),
    (WireFormat.RESPONSES, Target.ANTHROPIC),
    (WireFormat.RESPONSES, Target.OLLAMA),
]


@pytest.mark.parametrize(("fmt", "target"), PAIRS, ids=lambda v: str(v))
async def test_refused_rows_answer_400_in_the_clients_dialect(
    fmt: WireFormat, target: Target, fake_engine: Any, gateway: Any
) -> None:
    fake, url, model = await _gateway_to(target, fake_engine, gateway)
    rows = _refused(fmt, target)
    assert rows, (fmt, target)
    kind = ENGINES[target][0]
    for field, example in rows:
        status, _headers, raw = await post(url, PATHS[fmt], {**_base(fmt, model), field: example})
        assert status == 400, (field, raw)
        body = json.loads(raw)
        error = body["error"]
        assert error["message"].startswith(f"{field}: "), (field, error)
        assert f"is not supported by {kind}" in error["message"], (field, error)
        if fmt is WireFormat.ANTHROPIC:
            assert body["type"] == "error"
            assert error["type"] == "invalid_request_error"
        else:
            assert (error["param"], error["code"]) == (field, "unsupported")
    assert chat_requests(fake) == [] and not [r for r in fake.requests if "/api/chat" in r.path]


# -- mapped and carried rows, proven on the engine's side ---------------------------------


async def test_anthropic_top_k_reaches_an_openai_engine_and_service_fields_do_not(
    fake_engine: Any, gateway: Any, clients: Any
) -> None:
    local, url, model = await _gateway_to(Target.OPENAI, fake_engine, gateway)
    ac = clients("anthropic", url)
    local.replies.append(Reply(text="ok"))
    msg = await ac.messages.create(
        model=model,
        max_tokens=16,
        messages=HI,
        stop_sequences=["END"],
        metadata={"user_id": "u-1"},
        service_tier="auto",
        # This SDK version no longer types top_k; the API still takes it.
        extra_body={
            "top_k": 40,
            "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
        },
    )
    assert msg.content[0].text == "ok"
    sent = chat_requests(local)[-1].json
    assert sent["top_k"] == 40  # carried
    assert sent["stop"] == ["END"]  # mapped
    # dropped by name: Anthropic's own service fields
    assert not {"metadata", "service_tier", "context_management"} & set(sent)


async def test_openai_stop_and_top_k_reach_an_anthropic_engine(
    fake_engine: Any, gateway: Any, clients: Any
) -> None:
    claude, url, model = await _gateway_to(Target.ANTHROPIC, fake_engine, gateway)
    oc = clients("openai", url)
    claude.replies.append(Reply(text="ok"))
    done = await oc.chat.completions.create(
        model=model,
        messages=HI,
        stop=["END", "STOP"],
        user="u-1",
        store=False,
        metadata={"tag": "x"},
        extra_body={"top_k": 5},
    )
    assert done.choices[0].message.content == "ok"
    sent = chat_requests(claude)[-1].json
    assert sent["stop_sequences"] == ["END", "STOP"]  # mapped
    assert sent["top_k"] == 5  # carried
    assert not {"user", "store", "metadata", "stop"} & set(sent)  # dropped by name


async def test_responses_client_sampling_fields_reach_ollama_options(
    fake_engine: Any, gateway: Any
) -> None:
    ollama, url, model = await _gateway_to(Target.OLLAMA, fake_engine, gateway)
    ollama.replies.append(Reply(text="ok"))
    body = {
        **_base(WireFormat.RESPONSES, model),
        "temperature": 0.2,
        "max_output_tokens": 30,
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "client_metadata": {"session_id": "s"},
    }
    status, _headers, raw = await post(url, "/v1/responses", body)
    assert status == 200, raw
    sent = [r for r in ollama.requests if r.path == "/api/chat"][-1].json
    assert sent["options"] == {"temperature": 0.2, "num_predict": 30}
    assert not {"store", "include", "client_metadata"} & set(sent)


async def test_ollama_engine_refuses_a_tool_choice_it_cannot_force(
    fake_engine: Any, gateway: Any
) -> None:
    """Ollama has no tool_choice: a required or named one is refused, not dropped."""
    ollama, url, model = await _gateway_to(Target.OLLAMA, fake_engine, gateway)
    tool = {"type": "function", "name": "f", "parameters": {"type": "object"}}
    body = {**_base(WireFormat.RESPONSES, model), "tools": [tool], "tool_choice": "required"}
    status, _headers, raw = await post(url, "/v1/responses", body)
    assert status == 400, raw
    error = json.loads(raw)["error"]
    assert (error["param"], error["code"]) == ("tool_choice", "unsupported")
    assert "is not supported by ollama" in error["message"]
    assert not [r for r in ollama.requests if r.path == "/api/chat"]


# -- what Claude Code, Codex and opencode really send goes through every transcoding path --

# (capture files, the gateway path, the targets those clients are transcoded to)
AGENTS = [
    ("claude-code-*.jsonl", "/v1/messages", (Target.OPENAI,)),
    ("codex-*.jsonl", "/v1/responses", (Target.OPENAI, Target.ANTHROPIC, Target.OLLAMA)),
    ("opencode-*.jsonl", "/v1/responses", (Target.OPENAI, Target.ANTHROPIC, Target.OLLAMA)),
    ("opencode-*.jsonl", "/v1/chat/completions", (Target.ANTHROPIC,)),
]


@pytest.mark.parametrize(
    ("pattern", "path", "target"),
    [(p, path, t) for p, path, targets in AGENTS for t in targets],
    ids=lambda v: str(v),
)
async def test_agent_captures_are_never_refused_when_transcoded(
    pattern: str, path: str, target: Target, fake_engine: Any, gateway: Any
) -> None:
    from tests.captures import client_requests

    fake, url, model = await _gateway_to(target, fake_engine, gateway)
    fake.default_reply = Reply(text="ok")
    captured = [
        c
        for c in client_requests(pattern)
        if c.path == path and "image" not in c.name  # the fakes' models are text-only
    ]
    assert captured
    for capture in captured:
        body = {**capture.body, "model": model}
        status, _headers, raw = await post(url, path, body)
        assert status == 200, (capture.name, raw[:300])
