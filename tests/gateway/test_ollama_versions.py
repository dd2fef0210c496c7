"""Point 11: an Ollama engine older than 0.14.0 has no /v1/messages. The backend learns the
version from GET /api/version and relays only the formats that version serves; the rest
is transcoded through /api/chat, which every version has."""

from __future__ import annotations

from typing import Any

import pytest

from modelport.backends.ollama import OllamaBackend, formats_for, parse_version
from modelport.types import RelayedFormat, RelayFormat, WireFormat
from tests.gateway.helpers import backend

MODEL = "llama3.2:latest"
NATIVE = {WireFormat.OLLAMA, WireFormat.OLLAMA_GENERATE}
COMPLETIONS = RelayFormat.COMPLETIONS  # /v1/completions since 0.1.49 (d626b99b)


@pytest.mark.parametrize(
    ("version", "relayed"),
    [
        ("0.1.48", {WireFormat.OPENAI}),
        ("0.1.49", {WireFormat.OPENAI, COMPLETIONS}),
        ("0.12.6", {WireFormat.OPENAI, COMPLETIONS}),
        ("0.13.5", {WireFormat.OPENAI, COMPLETIONS}),
        ("0.14.0-rc1", {WireFormat.OPENAI, COMPLETIONS, WireFormat.ANTHROPIC}),
        ("0.14.0", {WireFormat.OPENAI, COMPLETIONS, WireFormat.ANTHROPIC}),
        ("v0.32.0", {WireFormat.OPENAI, COMPLETIONS, WireFormat.ANTHROPIC}),
        ("0.1.23", set()),
        ("0.0.0", set()),  # a build from source: any commit, so unknown
        ("dev", set()),
        (None, set()),
    ],
)
def test_formats_follow_the_version(version: str | None, relayed: set[RelayedFormat]) -> None:
    assert formats_for(version) == NATIVE | relayed


def test_versions_are_read_as_numbers() -> None:
    assert parse_version("0.9.10") == (0, 9, 10)
    assert parse_version("0.9.10") > parse_version("0.9.9")  # type: ignore[operator]


async def test_the_fake_plays_an_old_ollama(fake_engine: Any) -> None:
    import aiohttp

    fake = await fake_engine("ollama", models=[MODEL], version="0.12.6")
    async with aiohttp.ClientSession() as session:
        async with session.get(fake.url + "/api/version") as response:
            assert await response.json() == {"version": "0.12.6"}
        async with session.post(fake.url + "/v1/messages", json={}) as response:
            assert response.status == 404
            assert await response.text() == "404 page not found"


async def _ask_anthropic(clients: Any, url: str) -> tuple[str, str]:
    client = clients("anthropic", url)
    whole = await client.messages.create(
        model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    )
    async with client.messages.stream(
        model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        streamed = await stream.get_final_text()
    return whole.content[0].text, streamed


async def test_anthropic_client_on_an_old_ollama_is_transcoded(
    fake_engine: Any, gateway: Any, clients: Any
) -> None:
    fake = await fake_engine("ollama", models=[MODEL], version="0.12.6")
    _gw, url = await gateway(backends=[backend("ollama", fake)])
    assert await _ask_anthropic(clients, url) == ("Hello from the fake.",) * 2
    assert not fake.requests_to("/v1/messages")
    assert len(fake.requests_to("/api/chat")) == 2


async def test_anthropic_client_on_a_new_ollama_is_relayed(
    fake_engine: Any, gateway: Any, clients: Any
) -> None:
    fake = await fake_engine("ollama", models=[MODEL], version="0.14.0")
    _gw, url = await gateway(backends=[backend("ollama", fake)])
    assert await _ask_anthropic(clients, url) == ("Hello from the fake.",) * 2
    assert len(fake.requests_to("/v1/messages")) == 2
    assert not fake.requests_to("/api/chat")


async def test_an_ollama_that_cannot_say_its_version_is_transcoded_for_every_client(
    fake_engine: Any, gateway: Any, clients: Any
) -> None:
    fake = await fake_engine("ollama", models=[MODEL])
    del fake._routes[("GET", "/api/version")]  # a proxy in front, or an Ollama before 0.1.14
    _gw, url = await gateway(backends=[backend("ollama", fake)])
    assert await _ask_anthropic(clients, url) == ("Hello from the fake.",) * 2
    openai = clients("openai", url)
    answer = await openai.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content == "Hello from the fake."
    chats = [r.path for r in fake.requests if r.path not in ("/api/show", "/api/version")]
    assert [p for p in chats if p.startswith(("/api/chat", "/v1/"))] == ["/api/chat"] * 3


async def test_the_version_is_learned_again_at_each_refresh(fake_engine: Any) -> None:
    """An Ollama upgraded in place serves /v1/messages from the next model refresh on."""
    fake = await fake_engine("ollama", models=[MODEL], version="0.12.6")
    ollama = OllamaBackend(fake.url)
    try:
        await ollama.list_models()
        assert (ollama.version, WireFormat.ANTHROPIC in ollama.formats) == ("0.12.6", False)
        fake.version = "0.14.1"
        await ollama.list_models()
        assert (ollama.version, WireFormat.ANTHROPIC in ollama.formats) == ("0.14.1", True)
    finally:
        await ollama.aclose()
