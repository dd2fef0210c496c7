"""Shared fixtures: protocol fakes of every engine, and a port nobody listens on."""

from __future__ import annotations

import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `from tests.fakes import ...` wherever pytest is started from
    sys.path.insert(0, str(ROOT))

from tests.fakes import FakeEngine  # noqa: E402

# The gateway fixtures live in their own module; registered here, before any test imports it.
pytest_plugins = ["tests.gateway_harness"]

# Property tests check what a codec does, not how fast one example runs: on a loaded 2-core
# CI machine the default 200 ms deadline per example would fail them for the wrong reason.
settings.register_profile("modelport", deadline=None, print_blob=True)
settings.load_profile("modelport")

FakeFactory = Callable[..., Awaitable[FakeEngine]]


@pytest.fixture
async def fake_engine() -> AsyncIterator[FakeFactory]:
    """`fake = await fake_engine("vllm", models=[...], api_key=..., context_window=...)`.

    Starts a FakeEngine on 127.0.0.1 (ephemeral port); every fake started is stopped at
    teardown.
    """
    started: list[FakeEngine] = []

    async def start(kind: str, **kwargs: Any) -> FakeEngine:
        fake = FakeEngine(kind, **kwargs)
        await fake.start()
        started.append(fake)
        return fake

    yield start
    for fake in reversed(started):
        await fake.stop()


@pytest.fixture
def refused_url() -> str:
    """A 127.0.0.1 URL on a port nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
