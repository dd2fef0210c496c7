"""The openai SDK's Responses API (`client.responses`) through the gateway, on three engines:
an OpenAI-only one (transcoded to chat completions), an Anthropic-only one (transcoded to
Messages) and one that serves /v1/responses itself (relayed)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.fakes import FakeEngine, Reply
from tests.gateway.helpers import backend, get, post, sse_frames

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
    "strict": False,
}
CALL = ("call_w1", "get_weather", {"city": "Rome"})
ENGINES = ["localai", "anthropic", "vllm", "openai"]
RELAYED = ("vllm", "openai")


async def _setup(kind: str, fake_engine: Any, gateway: Any) -> tuple[FakeEngine, str]:
    """A gateway over one fake of `kind` serving model `m`."""
    if kind in ("anthropic", "openai"):
        fake = await fake_engine(kind, models=["m"], api_key="k")
        cloud = backend(kind, fake, api_key_env="K")
        _gw, url = await gateway(backends=[cloud], env={"K": "k"})
    else:
        fake = await fake_engine(kind, models=["m"])
        _gw, url = await gateway(backends=[backend(kind, fake)])
    return fake, url


def _engine_path(kind: str) -> str:
    return {"localai": "/v1/chat/completions", "anthropic": "/v1/messages"}.get(
        kind, "/v1/responses"
    )


def _sent(fake: FakeEngine, kind: str) -> dict[str, Any]:
    body: dict[str, Any] = fake.requests_to(_engine_path(kind))[-1].json
    return body


@pytest.mark.parametrize("kind", ENGINES)
async def test_whole_with_instructions(kind: str, fake_engine, gateway, clients) -> None:
    fake, url = await _setup(kind, fake_engine, gateway)
    oc = clients("openai", url)
    fake.replies.append(Reply(text="Hello there.", usage=(11, 4)))
    resp = await oc.responses.create(model="m", input="hi", instructions="Be brief.")
    assert resp.object == "response"
    assert resp.status == "completed"
    assert resp.output_text == "Hello there."
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (11, 4)
    assert resp.usage.total_tokens == 15
    assert resp.model == "m"
    sent = _sent(fake, kind)
    if kind == "localai":
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    elif kind == "anthropic":
        assert "Be brief." in json.dumps(sent["system"])
    else:
        assert sent["instructions"] == "Be brief."  # relayed as the client sent it
        assert set(sent) == {"model", "input", "instructions"}


@pytest.mark.parametrize("kind", ENGINES)
async def test_streamed_events_and_helper(kind: str, fake_engine, gateway, clients) -> None:
    fake, url = await _setup(kind, fake_engine, gateway)
    oc = clients("openai", url)
    fake.replies.append(Reply(text="Hello there.", usage=(9, 3), chunk_chars=3))
    stream = await oc.responses.create(model="m", input="hi", stream=True)
    events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Hello there."
    for name in ("output_item.added", "content_part.added", "output_text.done", "output_item.done"):
        assert f"response.{name}" in kinds
    final = events[-1].response
    assert final.output_text == "Hello there."
    assert (final.usage.input_tokens, final.usage.output_tokens) == (9, 3)

    fake.replies.append(Reply(text="Hi again.", usage=(9, 3), chunk_chars=2))
    async with oc.responses.stream(model="m", input="hi") as helper:
        texts = [e.delta async for e in helper if e.type == "response.output_text.delta"]
        response = await helper.get_final_response()
    assert "".join(texts) == "Hi again."
    assert response.output_text == "Hi again."
    assert response.usage.output_tokens == 3


@pytest.mark.parametrize("kind", ENGINES)
async def test_function_call_round_trip(kind: str, fake_engine, gateway, clients) -> None:
    fake, url = await _setup(kind, fake_engine, gateway)
    oc = clients("openai", url)
    fake.replies.append(Reply(text="", tool_calls=[CALL], usage=(20, 8)))
    first = await oc.responses.create(model="m", input="Weather in Rome?", tools=[WEATHER])
    calls = [item for item in first.output if item.type == "function_call"]
    assert [(c.call_id, c.name, json.loads(c.arguments)) for c in calls] == [CALL]
    if kind not in RELAYED:
        assert _tool_names(_sent(fake, kind)) == ["get_weather"]

    history: list[Any] = [{"role": "user", "content": "Weather in Rome?"}]
    history += [c.model_dump(exclude_none=True) for c in calls]
    history.append({"type": "function_call_output", "call_id": "call_w1", "output": "sunny"})
    fake.replies.append(Reply(text="It is sunny in Rome.", usage=(30, 6)))
    second = await oc.responses.create(model="m", input=history, tools=[WEATHER])
    assert second.output_text == "It is sunny in Rome."
    sent = json.dumps(_sent(fake, kind))
    assert "call_w1" in sent and "sunny" in sent

    fake.replies.append(Reply(text="", tool_calls=[CALL], usage=(20, 8), chunk_chars=2))
    async with oc.responses.stream(model="m", input="Weather?", tools=[WEATHER]) as helper:
        argument_deltas = [
            e.delta async for e in helper if e.type == "response.function_call_arguments.delta"
        ]
        final = await helper.get_final_response()
    (call,) = [item for item in final.output if item.type == "function_call"]
    assert (call.call_id, call.name, json.loads(call.arguments)) == CALL
    joined = "".join(argument_deltas)
    if kind == "vllm":  # vLLM's added item already carries the first fragment
        assert call.arguments.endswith(joined)
    else:
        assert json.loads(joined) == CALL[2]


def _tool_names(body: dict[str, Any]) -> list[str]:
    tools = body.get("tools") or []
    return [t["function"]["name"] if "function" in t else t["name"] for t in tools]


@pytest.mark.parametrize("kind", ENGINES)
async def test_json_schema_text_format(kind: str, fake_engine, gateway, clients) -> None:
    fake, url = await _setup(kind, fake_engine, gateway)
    oc = clients("openai", url)
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    fake.replies.append(Reply(text='{"a": 1}'))
    text = {"format": {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}}
    resp = await oc.responses.create(model="m", input="give a", text=text)
    assert json.loads(resp.output_text) == {"a": 1}
    sent = _sent(fake, kind)
    if kind == "localai":
        assert sent["response_format"]["type"] == "json_schema"
        assert sent["response_format"]["json_schema"]["schema"] == schema
    elif kind in RELAYED:
        assert sent["text"] == text


@pytest.mark.parametrize("kind", ENGINES)
async def test_reasoning_comes_back_as_summary(kind: str, fake_engine, gateway, clients) -> None:
    fake, url = await _setup(kind, fake_engine, gateway)
    oc = clients("openai", url)
    reasoning = {"effort": "high", "summary": "auto"}
    fake.replies.append(Reply(text="42.", thinking="Let me think.", chunk_chars=4))
    resp = await oc.responses.create(model="m", input="q", reasoning=reasoning)
    (item,) = [i for i in resp.output if i.type == "reasoning"]
    said = "".join(s.text for s in item.summary) or "".join(c.text for c in item.content or ())
    assert said == "Let me think."
    assert resp.output_text == "42."
    if kind == "localai":
        assert _sent(fake, kind)["reasoning_effort"] == "high"

    fake.replies.append(Reply(text="42.", thinking="Let me think.", chunk_chars=4))
    stream = await oc.responses.create(model="m", input="q", reasoning=reasoning, stream=True)
    events = [e async for e in stream]
    thought = [
        e.delta
        for e in events
        if e.type in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta")
    ]
    assert "".join(thought) == "Let me think."
    if kind != "vllm":  # summary events, as OpenAI sends them (vLLM: reasoning_text)
        kinds = [e.type for e in events]
        assert "response.reasoning_summary_part.added" in kinds
        assert "response.reasoning_summary_text.done" in kinds


@pytest.mark.parametrize("kind", ENGINES)
async def test_failure_mid_stream_is_never_a_completion(
    kind: str, fake_engine, gateway, clients
) -> None:
    fake, url = await _setup(kind, fake_engine, gateway)
    fake.replies.append(Reply(text="partial answer here", chunk_chars=3, fail_after_chunks=2))
    status, _, raw = await post(url, "/v1/responses", {"model": "m", "input": "hi", "stream": True})
    assert status == 200
    frames = sse_frames(raw)
    names = [event for event, _ in frames]
    assert "response.completed" not in names
    assert "error" in names
    if kind not in RELAYED:  # transcoded: our own answer, closed as failed
        assert names[-1] == "response.failed"
        failed = json.loads(frames[-1][1])["response"]
        assert failed["status"] == "failed"
        assert failed["error"]["message"]


async def test_previous_response_id_is_a_clear_400(fake_engine, gateway, clients) -> None:
    fake, url = await _setup("localai", fake_engine, gateway)
    oc = clients("openai", url)
    with pytest.raises(openai.BadRequestError) as caught:
        await oc.responses.create(model="m", input="hi", previous_response_id="resp_123")
    assert "previous_response_id" in str(caught.value)
    assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]
    assert not fake.requests_to("/v1/chat/completions")


async def test_hosted_and_namespace_tools(fake_engine, gateway, clients) -> None:
    """Hosted tools never reach the engine; namespace functions are unwrapped, and a call to
    one comes back with its namespace."""
    fake, url = await _setup("localai", fake_engine, gateway)
    oc = clients("openai", url)
    crm = {
        "type": "namespace",
        "name": "crm",
        "description": "Customer records",
        "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
    }
    tools: Any = [WEATHER, {"type": "web_search"}, crm]
    fake.replies.append(Reply(text="", tool_calls=[("call_c", "crm__lookup", {"id": 7})]))
    resp = await oc.responses.create(model="m", input="who is 7?", tools=tools, store=False)
    assert _tool_names(_sent(fake, "localai")) == ["get_weather", "crm__lookup"]
    (call,) = [i for i in resp.output if i.type == "function_call"]
    assert (call.name, call.namespace, call.call_id) == ("lookup", "crm", "call_c")


async def test_full_backend_answers_a_responses_client_429(fake_engine, gateway, clients) -> None:
    """A queue-full is a rate limit for Responses clients, as for chat completions ones."""
    fake = await fake_engine("localai", models=["m"])
    fake.default_reply = Reply(text="slow " * 40, chunk_chars=2, delay_s=0.05)
    _gw, url = await gateway(backends=[backend("localai", fake, max_concurrent=1, max_queue=0)])
    oc = clients("openai", url)
    holding = await oc.responses.create(model="m", input="hold", stream=True)
    await anext(aiter(holding))
    with pytest.raises(openai.RateLimitError) as caught:
        await oc.responses.create(model="m", input="hi")
    assert caught.value.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "1"
    await holding.close()


CODEX_TOOLS: Any = [
    {"type": "function", "name": "shell", "parameters": {"type": "object"}, "strict": False},
    {"type": "web_search", "external_web_access": False},
    {
        "type": "namespace",
        "name": "mcp__gh__",
        "description": "GitHub",
        "tools": [{"type": "function", "name": "list_prs", "parameters": {"type": "object"}}],
    },
]


@pytest.mark.parametrize("kind", ["localai", "anthropic"])
async def test_codex_shaped_turn_streamed(kind: str, fake_engine, gateway, clients) -> None:
    """A second Codex turn: developer text, reasoning with encrypted content, a call and its
    output, hosted and namespace tools, store false, include, prompt_cache_key; the engine
    asks for a namespaced tool and the stream names it back with its namespace."""
    fake, url = await _setup(kind, fake_engine, gateway)
    oc = clients("openai", url)
    history: Any = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "D"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
        {"type": "function_call", "call_id": "c0", "name": "shell", "arguments": '{"c":"ls"}'},
        {"type": "function_call_output", "call_id": "c0", "output": "a.txt"},
    ]
    fake.replies.append(
        Reply(text="Checking.", tool_calls=[("c9", "mcp__gh__list_prs", {"n": 1})], chunk_chars=3)
    )
    async with oc.responses.stream(
        model="m",
        input=history,
        tools=CODEX_TOOLS,
        instructions="You are Codex.",
        store=False,
        include=["reasoning.encrypted_content"],
        reasoning={"effort": "medium", "summary": "auto"},
        parallel_tool_calls=False,
        prompt_cache_key="session-1",
        tool_choice="auto",
    ) as stream:
        final = await stream.get_final_response()
    (call,) = [item for item in final.output if item.type == "function_call"]
    assert (call.name, call.namespace, call.call_id) == ("list_prs", "mcp__gh__", "c9")
    assert json.loads(call.arguments) == {"n": 1}
    assert final.output_text == "Checking."
    sent = _sent(fake, kind)
    assert "web_search" not in json.dumps(sent) and "gAAA" not in json.dumps(sent)
    assert sorted(_tool_names(sent)) == ["mcp__gh__list_prs", "shell"]


async def test_openapi_lists_the_route(fake_engine, gateway) -> None:
    _fake, url = await _setup("localai", fake_engine, gateway)
    status, _, raw = await get(url, "/openapi.json")
    assert status == 200
    assert "post" in json.loads(raw)["paths"]["/v1/responses"]


@pytest.mark.parametrize("kind", ["localai", "anthropic"])
async def test_custom_tool_round_trip(kind: str, fake_engine, gateway, clients) -> None:
    """A custom (free-form) tool: the engine sees a function with one string argument, the
    client gets a custom_tool_call with that string, and sends back its output."""
    fake, url = await _setup(kind, fake_engine, gateway)
    oc = clients("openai", url)
    tools: Any = [{"type": "custom", "name": "run_js", "description": "Run JavaScript"}]
    fake.replies.append(Reply(text="", tool_calls=[("c3", "run_js", {"input": "1+1"})]))
    async with oc.responses.stream(model="m", input="add", tools=tools) as stream:
        final = await stream.get_final_response()
    (call,) = final.output
    assert (call.type, call.name, call.input, call.call_id) == (
        "custom_tool_call",
        "run_js",
        "1+1",
        "c3",
    )
    assert _tool_names(_sent(fake, kind)) == ["run_js"]

    history: Any = [
        {"role": "user", "content": "add"},
        {"type": "custom_tool_call", "call_id": "c3", "name": "run_js", "input": "1+1"},
        {"type": "custom_tool_call_output", "call_id": "c3", "output": "2"},
    ]
    fake.replies.append(Reply(text="It is 2."))
    second = await oc.responses.create(model="m", input=history, tools=tools)
    assert second.output_text == "It is 2."
    sent = json.dumps(_sent(fake, kind))
    assert "c3" in sent and "1+1" in sent
