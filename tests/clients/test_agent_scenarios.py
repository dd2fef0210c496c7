"""Claude Code, Codex CLI and opencode (pinned in agents.py) one-shot through the gateway, on
an engine that speaks the agent's dialect (passthrough) and on one that does not
(transcoded): the same four scenarios for each (scenarios.py), with what tells the agents
apart in agent_specs.py. Test ids read `<agent>-<passthrough|transcoded>-<engine kind>`."""

from __future__ import annotations

import pytest

from tests.clients import scenarios
from tests.clients.scenarios import Case, per_agent


@pytest.mark.parametrize("case", per_agent("engines"), indirect=True)
async def test_agent_prints_the_engines_words(case: Case) -> None:
    await scenarios.prints_the_engines_words(case)


@pytest.mark.parametrize("case", per_agent("engines"), indirect=True)
async def test_agent_runs_the_tool_the_engine_asks_for(case: Case) -> None:
    await scenarios.reads_the_marker(case)


@pytest.mark.parametrize("case", per_agent("thinking_engines"), indirect=True)
async def test_agent_takes_thinking_before_a_tool_call(case: Case) -> None:
    await scenarios.takes_thinking_before_a_tool_call(case)


@pytest.mark.parametrize("case", per_agent("image_engines"), indirect=True)
async def test_agent_passes_an_image_to_the_engine(case: Case) -> None:
    await scenarios.passes_an_image_to_the_engine(case)
