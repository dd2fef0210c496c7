"""Secrets and internal addresses never leave the process (issue 11, point 4).

An upstream that echoes its key in every error body, stream error frame, header and health
probe answer (tests/fakes/echo.py): the key must not reach any answer a client gets, the
public or keyed `/ready`, `/metrics`, `/v1/models`, the log or the ledger. The public
`/ready` says ready or not, nothing more, once keys are configured; and an error names no
upstream URL or host:port.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.fakes import Reply
from tests.fakes.echo import EchoingEngine
from tests.gateway.helpers import HI, backend, get, post

GW_KEY = "sk-gw-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {GW_KEY}"}
# One key shaped like a key (the shape filter would catch it anyway) and one that is not:
# only knowing the value finds the second.
UP_KEYS = ["sk-proj-Echo0123456789abcdef", "echo.secret.7f3a9c1d"]

DIALECTS: list[tuple[str, Callable[[bool], dict[str, Any]]]] = [
    ("/v1/chat/completions", lambda s: {"model": "m", "messages": HI, "stream": s}),
    ("/v1/messages", lambda s: {"model": "m", "messages": HI, "max_tokens": 20, "stream": s}),
    ("/v1/responses", lambda s: {"model": "m", "input": "hi", "stream": s}),
    ("/api/chat", lambda s: {"model": "m", "messages": HI, "stream": s}),
]


@pytest.fixture
async def echoing() -> AsyncIterator[Callable[..., Any]]:
    started: list[EchoingEngine] = []

    async def start(kind: str, **kwargs: Any) -> EchoingEngine:
        fake = EchoingEngine(kind, **kwargs)
        await fake.start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        await fake.stop()


def _everything(status: int, headers: Any, body: bytes) -> bytes:
    head = "\n".join(f"{k}: {v}" for k, v in headers.items())
    return f"{status}\n{head}\n\n".encode() + body


@pytest.mark.parametrize("kind", ["vllm", "anthropic"])
@pytest.mark.parametrize("up_key", UP_KEYS)
async def test_an_echoing_upstream_key_reaches_nothing_anyone_can_read(
    echoing, gateway, tmp_path, caplog: pytest.LogCaptureFixture, kind: str, up_key: str
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = await echoing(kind, models=["m"], api_key=up_key)
    gw, url = await gateway(
        backends=[backend(kind, fake, api_key_env="UP")],
        env={"UP": up_key, "MODELPORT_API_KEY": GW_KEY},
    )
    seen: list[bytes] = []
    echo = f"Incorrect API key provided: {up_key} (you sent Authorization: Bearer {up_key})"
    for path, body in DIALECTS:
        for stream in (False, True):
            script = [Reply()]  # a good answer: only the headers echo
            script += [Reply(status=s, error_message=echo) for s in (400, 401, 429, 500)]
            if stream:
                script.append(Reply(fail_after_chunks=1, error_message=echo))
            for reply in script:
                fake.replies.append(reply)
                status, headers, raw = await post(url, path, body(stream), headers=AUTH)
                seen.append(_everything(status, headers, raw))
                assert (status == 200) == (reply.status == 200), (path, stream, raw)
    assert any(
        up_key in r.headers.get("Authorization", r.headers.get("x-api-key", ""))
        for r in fake.requests
    )

    # The health probe fails with a body quoting the key.
    fake.health_fails = True
    await gw.router.refresh()
    public = await get(url, "/ready")
    keyed = await get(url, "/ready", headers=AUTH)
    seen += [_everything(*public), _everything(*keyed)]
    for path in ("/metrics", "/v1/models", "/health", "/"):
        seen.append(_everything(*await get(url, path, headers=AUTH)))
    await gw.stop(grace_s=0)

    leaks = sorted({blob[:400] for blob in seen if up_key.encode() in blob})
    assert leaks == []
    assert up_key.encode() not in (tmp_path / "usage.sqlite3").read_bytes()
    assert up_key not in caplog.text
    for record in caplog.records:
        assert up_key not in record.getMessage()
        assert up_key not in str(record.exc_info) if record.exc_info else True
    # In public, ready or not and nothing more; with the key, why (the echo did reach us).
    assert (public[0], json.loads(public[2])) == (503, {"status": "not ready"})
    last_error = json.loads(keyed[2])["backends"][0]["last_error"]
    assert "health check failed" in last_error or "503" in last_error


async def test_the_public_ready_is_status_only(fake_engine, gateway) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    _gw, url = await gateway(
        backends=[backend("vllm", vllm, name="gpu")], env={"MODELPORT_API_KEY": GW_KEY}
    )
    status, _, raw = await get(url, "/ready")
    assert (status, json.loads(raw)) == (200, {"status": "ready"})
    status, _, raw = await get(url, "/ready", headers={"Authorization": "Bearer wrong-key-000"})
    assert (status, json.loads(raw)) == (200, {"status": "ready"})
    status, _, raw = await get(url, "/ready", headers=AUTH)
    assert status == 200 and json.loads(raw)["backends"][0]["name"] == "gpu"


async def test_errors_name_no_upstream_address(fake_engine, gateway) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    gw, url = await gateway(
        backends=[backend("vllm", vllm, name="gpu")], env={"MODELPORT_API_KEY": GW_KEY}
    )
    address = vllm.url.removeprefix("http://")
    # The engine goes away after the gateway saw it ready: the failure names no address.
    await vllm.stop()
    for path, body in DIALECTS:
        status, _, raw = await post(url, path, body(False), headers=AUTH)
        assert status >= 500, raw
        assert address.encode() not in raw and b"127.0.0.1" not in raw, raw
        # Named as configured; once the breaker opens, "no backend ... is ready (...: gpu)".
        named = b"cannot connect to backend 'gpu'" in raw
        assert named or (path != DIALECTS[0][0] and b"failing: gpu" in raw), raw
    await gw.router.refresh()
    status, _, raw = await get(url, "/ready")
    assert (status, json.loads(raw)) == (503, {"status": "not ready"})
    status, _, raw = await get(url, "/ready", headers=AUTH)
    last_error = json.loads(raw)["backends"][0]["last_error"]
    assert last_error and address not in last_error


async def test_keyless_loopback_keeps_the_ready_details(fake_engine, gateway) -> None:
    """No keys (loopback only): every local client is trusted, /ready keeps its details."""
    vllm = await fake_engine("vllm", models=["m"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    status, _, raw = await get(url, "/ready")
    assert status == 200 and json.loads(raw)["backends"][0]["ready"] is True
