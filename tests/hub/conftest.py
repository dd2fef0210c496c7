from collections.abc import AsyncIterator

import pytest

from tests.fakes.engine import FakeEngine
from tests.hub.agents import hub_gateway

__all__ = ["engine", "hub_gateway"]


@pytest.fixture
async def engine() -> AsyncIterator[FakeEngine]:
    """A vLLM engine fake serving fake-model: what the hub's agents relay to."""
    async with FakeEngine("vllm", models=["fake-model"]) as fake:
        yield fake
