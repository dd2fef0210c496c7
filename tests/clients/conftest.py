"""Fixtures of the real-agent tier: installed agents, a workspace, a gateway over one fake.

    fake, url, model = await served(kind)    # a FakeEngine of `kind` serving MODEL (= model),
                                             # a Gateway over it
    fake, url, model = await served(kind, VISION_MODEL)    # one the fake says takes images

The fake answers WORDS to every request unless a test sets `fake.reply_for`. Its context
window is large: Claude Code alone sends about 15k tokens of system prompt and tools.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.clients.agents import CLAUDE_CODE, CODEX, OPENCODE, Agent, AgentInstallError
from tests.clients.agents import ensure_installed as _ensure_installed
from tests.clients.helpers import MARKER, MODEL, WORDS, Served, Workspace
from tests.clients.scenarios import Case
from tests.fakes import FakeEngine, Reply


def _installed(agent: Agent) -> Path:
    try:
        return _ensure_installed(agent)[0]
    except AgentInstallError as exc:  # loud: the tier never skips an agent it cannot install
        pytest.fail(f"cannot install {agent.package}@{agent.version}: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    return _installed(CLAUDE_CODE)


@pytest.fixture(scope="session")
def codex_bin() -> Path:
    return _installed(CODEX)


@pytest.fixture(scope="session")
def opencode_bin() -> Path:
    return _installed(OPENCODE)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """Fresh $HOME and $PWD, with marker.txt in $PWD for the tool round trips."""
    space = Workspace.under(tmp_path)
    (space.work / "marker.txt").write_text(MARKER + "\n")
    return space


@pytest.fixture
async def served(fake_engine: Any, gateway: Any) -> Served:
    async def serve(kind: str, model: str = MODEL) -> tuple[FakeEngine, str, str]:
        fake: FakeEngine = await fake_engine(kind, models=[model], context_window=1_000_000)
        fake.default_reply = Reply(text=WORDS)
        backend = {"kind": kind, "url": fake.url, "api_key_env": "FAKE_ENGINE_KEY"}
        _, url = await gateway(backends=[backend], env={"FAKE_ENGINE_KEY": "k"})
        return fake, url, model

    return serve


@pytest.fixture
def case(request: pytest.FixtureRequest, served: Served, workspace: Workspace) -> Case:
    """The `(agent, engine)` parameter (scenarios.per_agent) as a Case; `served` is the
    module's own when it has one (test_hub_scenarios.py), else the one above."""
    agent, engine = request.param
    binary: Path = request.getfixturevalue(agent.binary_fixture)
    return Case(agent, engine, served, workspace, binary)
