"""Browser attacks on the keyless default (issue 11, point 9): foreign Origins and Hosts.

A page on any site can POST `text/plain` to 127.0.0.1 without a preflight, and DNS
rebinding makes the browser send the attacker's name as Host. The gateway refuses both
with a 403 in the path's dialect before any work; configured origins get proper CORS.
Requests without Origin (every SDK, curl, coding agent) are unaffected.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import aiohttp
import pytest

from modelport.config import ConfigError, parse_config, render_check
from tests.gateway.helpers import HI, backend, chat_body, chat_requests, get, post

EVIL = "https://evil.example"
APP = "https://app.example.com"
GW_KEY = "sk-gw-0123456789abcdef"
SDK_HEADERS = [
    "authorization",
    "content-type",
    "x-api-key",
    "anthropic-version",
    "anthropic-beta",
    "anthropic-dangerous-direct-browser-access",
    "x-stainless-os",
    "x-stainless-lang",
    "x-stainless-package-version",
    "x-stainless-retry-count",
]


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


async def _text_plain_post(url: str, path: str, body: dict, headers: dict[str, str]):
    """What a web page's `fetch(url, {method: "POST", body})` sends: text/plain, no preflight."""
    return await post(
        url, path, data=json.dumps(body).encode(), headers={"Content-Type": "text/plain", **headers}
    )


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("/v1/chat/completions", "openai"),
        ("/v1/messages", "anthropic"),
        ("/v1/responses", "responses"),
        ("/api/chat", "ollama"),
    ],
)
async def test_a_foreign_origin_cannot_spend_tokens(fake_engine, gateway, path, fmt) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    body = chat_body("anthropic" if fmt == "anthropic" else "openai", stream=False)
    if fmt == "responses":
        body = {"model": "m", "input": "hi"}
    status, headers, raw = await _text_plain_post(url, path, body, {"Origin": EVIL})
    assert status == 403, raw
    error = json.loads(raw)
    if fmt == "anthropic":
        assert error["type"] == "error" and error["error"]["type"] == "permission_error"
    elif fmt == "ollama":
        assert "allowed_origins" in error["error"]
    else:
        assert error["error"]["code"] == "permission_denied"
    assert "allowed_origins" in json.dumps(error)
    assert "Access-Control-Allow-Origin" not in headers
    assert chat_requests(vllm) == []
    # `Origin: null` (a sandboxed frame, a file:// page) is as foreign.
    status, _, _ = await _text_plain_post(url, path, body, {"Origin": "null"})
    assert status == 403


async def test_dns_rebinding_is_refused(fake_engine, gateway) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    port = _port(url)
    for path in ("/v1/models", "/ready", "/api/tags"):
        status, _, raw = await get(url, path, headers={"Host": f"rebind.evil.example:{port}"})
        assert status == 403, (path, raw)
        assert b"allowed_hosts" in raw
    status, _, raw = await post(
        url, "/v1/chat/completions", chat_body("openai", stream=False),
        headers={"Host": f"rebind.evil.example:{port}"},
    )  # fmt: skip
    assert status == 403
    assert json.loads(raw)["error"]["code"] == "permission_denied"
    # The local names at the bound port are answered; another port is not this gateway.
    # With no port at all (a hand-written request) a local name is answered too.
    for host in (
        f"localhost:{port}",
        f"127.0.0.1:{port}",
        f"[::1]:{port}",
        f"LOCALHOST:{port}",
        "127.0.0.1",
    ):
        status, _, _ = await get(url, "/v1/models", headers={"Host": host})
        assert status == 200, host
    status, _, _ = await get(url, "/v1/models", headers={"Host": f"localhost:{port + 1}"})
    assert status == 403
    assert chat_requests(vllm) == []


async def test_requests_without_origin_and_the_gateways_own_origin_are_unaffected(
    fake_engine, gateway, clients
) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    reply = await clients("openai", url).chat.completions.create(model="m", messages=HI)
    assert reply.choices[0].message.content == "Hello from the fake."
    msg = await clients("anthropic", url).messages.create(model="m", max_tokens=5, messages=HI)
    assert msg.content[0].text == "Hello from the fake."
    status, headers, _ = await post(
        url, "/v1/chat/completions", chat_body("openai", stream=False), headers={"Origin": url}
    )
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == url


async def test_allowed_origins_get_cors(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    _gw, url = await gateway(
        backends=[backend("vllm", vllm)],
        server={"allowed_origins": (APP,)},
        env={"MODELPORT_API_KEY": GW_KEY},
    )
    # The preflight carries no key (browsers never send credentials on it): answered first.
    async with (
        aiohttp.ClientSession() as session,
        session.options(
            url + "/v1/messages",
            headers={
                "Origin": APP,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": ", ".join(SDK_HEADERS),
            },
        ) as resp,
    ):
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == APP
        assert "POST" in resp.headers["Access-Control-Allow-Methods"]
        allowed = {h.strip() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
        assert set(SDK_HEADERS) <= allowed
        assert "Origin" in resp.headers.getall("Vary", [])
    # The real request: keys still apply; the answer, whole or streamed, names the origin.
    status, headers, _ = await post(
        url, "/v1/messages", chat_body("anthropic", stream=False), headers={"Origin": APP}
    )
    assert status == 401
    assert headers["Access-Control-Allow-Origin"] == APP  # so the page can read why
    for stream in (False, True):
        status, headers, raw = await post(
            url,
            "/v1/messages",
            chat_body("anthropic", stream=stream),
            headers={"Origin": APP, "x-api-key": GW_KEY, "anthropic-version": "2023-06-01"},
        )
        assert status == 200, raw
        assert headers["Access-Control-Allow-Origin"] == APP
        assert "x-request-id" in headers["Access-Control-Expose-Headers"]
    # Another origin is still refused, preflight included.
    status, _, _ = await post(
        url, "/v1/messages", chat_body("anthropic", stream=False),
        headers={"Origin": EVIL, "x-api-key": GW_KEY},
    )  # fmt: skip
    assert status == 403
    async with (
        aiohttp.ClientSession() as session,
        session.options(
            url + "/v1/messages",
            headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"},
        ) as resp,
    ):
        assert resp.status == 403
        assert "Access-Control-Allow-Origin" not in resp.headers


async def test_allowed_hosts_and_any_origin(fake_engine, gateway) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    _gw, url = await gateway(
        backends=[backend("vllm", vllm)],
        server={"allowed_hosts": ("gw.internal", "other.lan:9999"), "allowed_origins": ("*",)},
    )
    port = _port(url)
    for host, expected in (
        (f"gw.internal:{port}", 200),
        ("gw.internal", 200),
        ("other.lan:9999", 200),
        (f"other.lan:{port}", 403),
        (f"evil.example:{port}", 403),
    ):
        status, _, _ = await get(url, "/v1/models", headers={"Host": host})
        assert status == expected, host
    status, headers, _ = await get(url, "/v1/models", headers={"Origin": EVIL})
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == EVIL


def test_config_checks_and_shows_the_browser_settings() -> None:
    config = parse_config(
        '[server]\nallowed_origins = ["https://app.example.com", "http://localhost:3000"]\n'
        'allowed_hosts = ["gw.internal"]\n'
    )
    assert config.server.allowed_origins == ("https://app.example.com", "http://localhost:3000")
    text = render_check(config, None, env={})
    assert "browser origins: https://app.example.com, http://localhost:3000" in text
    assert "gw.internal" in text
    for bad, key in (
        ('allowed_origins = ["https://app.example.com/path"]', "server.allowed_origins[0]"),
        ('allowed_origins = ["app.example.com"]', "server.allowed_origins[0]"),
        ('allowed_hosts = ["http://gw.internal"]', "server.allowed_hosts[0]"),
        ('allowed_hosts = [""]', "server.allowed_hosts[0]"),
    ):
        with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
            parse_config(f"[server]\n{bad}\n")
    with pytest.raises(ConfigError, match="expected array"):
        parse_config('[server]\nallowed_origins = "*"\n')


async def test_a_request_without_host_is_no_rebinding(fake_engine, gateway) -> None:
    """Browsers always send Host; HTTP/1.0 by hand (`printf ... | nc`) may not."""
    vllm = await fake_engine("vllm", models=["m"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(url))
    writer.write(b"GET /health HTTP/1.0\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.0 200 ") or answer.startswith(b"HTTP/1.1 200 "), answer
