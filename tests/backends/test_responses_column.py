"""The profiles' `responses` column: which backends relay OpenAI Responses requests."""

from __future__ import annotations

import json

import pytest

from modelport.backends import connect
from modelport.backends.profiles import PROFILES
from modelport.errors import Unsupported
from modelport.types import FinishReason, WireFormat
from tests.fakes import Reply


def test_only_engines_that_serve_it_relay_responses() -> None:
    relaying = {name for name, p in PROFILES.items() if WireFormat.RESPONSES in p.relay_formats}
    assert relaying == {"openai", "openrouter", "vllm"}


@pytest.mark.parametrize(
    ("spec", "relays"),
    [
        ("vllm:http://127.0.0.1:1", True),
        ("openai", True),
        ("openrouter", True),
        ("llamacpp:http://127.0.0.1:1", False),
        ("ollama:http://127.0.0.1:1", False),  # Ollama's native adapter: transcoded
        ("lmstudio:http://127.0.0.1:1", False),
        ("anthropic", False),
    ],
)
async def test_backend_formats(spec: str, relays: bool) -> None:
    backend = connect(spec, api_key="k")
    try:
        assert (WireFormat.RESPONSES in backend.formats) is relays
    finally:
        await backend.aclose()


async def test_relay_goes_to_the_engines_responses_route(fake_engine) -> None:  # type: ignore[no-untyped-def]
    fake = await fake_engine("vllm", models=["m"])
    fake.replies.append(Reply(text="hi there", usage=(5, 2)))
    backend = connect(f"vllm:{fake.url}")
    body = json.dumps({"model": "m", "input": "hi", "stream": True}).encode()
    relay = await backend.relay(WireFormat.RESPONSES, body)
    raw = b"".join([chunk async for chunk in relay])
    await backend.aclose()
    assert fake.last.path == "/v1/responses"
    assert fake.last.json == {"model": "m", "input": "hi", "stream": True}  # untouched
    assert b"response.completed" in raw
    assert relay.usage is not None and relay.usage.output_tokens == 2
    assert relay.finish_reason is FinishReason.STOP


async def test_relay_refused_where_the_engine_lacks_it() -> None:
    backend = connect("localai:http://127.0.0.1:1")
    with pytest.raises(Unsupported):
        await backend.relay(WireFormat.RESPONSES, b'{"model": "m", "input": "x"}')
    await backend.aclose()
