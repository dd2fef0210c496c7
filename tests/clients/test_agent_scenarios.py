"""Claude Code, Codex CLI and opencode (pinned in agents.py) one-shot through the gateway, on
an engine that speaks the agent's dialect (passthrough) and on one that does not
(transcoded): the same four scenarios for each, with what tells the agents apart in
agent_specs.py. Test ids read `<agent>-<passthrough|transcoded>-<engine kind>`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.clients.agent_specs import AGENT_SPECS, AgentSpec, Engine
from tests.clients.helpers import (
    AFTER_TOOL,
    MARKER,
    MODEL,
    THOUGHT,
    VISION_MODEL,
    WORDS,
    AgentRun,
    Served,
    Workspace,
    engine_paths,
    run_agent,
    saw_in_a_request,
    saw_tool_result,
    write_png,
)
from tests.fakes.turns import tool_round_trip


def per_agent(engines_of: str) -> list[object]:
    """A `case` parameter for every agent and each engine in its `engines_of` list."""
    params: list[object] = []
    for agent in AGENT_SPECS:
        engines: Sequence[Engine] = getattr(agent, engines_of)
        for engine in engines:
            label = f"{agent.name}-{engine.role}-{engine.kind}"
            params.append(pytest.param((agent, engine), id=label))
    return params


@dataclass(frozen=True)
class Case:
    """One agent on one engine, in a fresh workspace."""

    agent: AgentSpec
    engine: Engine
    served: Served
    workspace: Workspace
    binary: Path

    async def launch(self, url: str, model: str, *argv_of: str, images: bool = False) -> AgentRun:
        """Point the agent at `url` for `model`, then run it with `argv_of` (a prompt, then
        any further arguments)."""
        env = self.agent.configure(self.workspace, url, model, images)
        prompt, *more = argv_of
        argv = [*self.agent.argv(self.binary, prompt), *more]
        return await run_agent(argv, self.workspace, env=env, timeout_s=self.agent.timeout_s)


@pytest.fixture
def case(request: pytest.FixtureRequest, served: Served, workspace: Workspace) -> Case:
    agent, engine = request.param
    binary: Path = request.getfixturevalue(agent.binary_fixture)
    return Case(agent, engine, served, workspace, binary)


@pytest.mark.parametrize("case", per_agent("engines"), indirect=True)
async def test_agent_prints_the_engines_words(case: Case) -> None:
    fake, url = await case.served(case.engine.kind)
    run = await case.launch(url, MODEL, "say hi")
    assert run.returncode == 0, run.explain()
    assert WORDS in run.stdout, run.explain()
    assert engine_paths(fake) == {case.engine.path}


async def check_reads_the_marker(case: Case, thinking: str = "") -> None:
    """The engine asks for the agent's read tool on marker.txt (after `thinking`, if any)."""
    fake, url = await case.served(case.engine.kind)
    tool, arguments = case.agent.read_tool(case.workspace.work / "marker.txt")
    fake.reply_for = tool_round_trip(tool, arguments, text=AFTER_TOOL, thinking=thinking)
    run = await case.launch(url, MODEL, case.agent.read_prompt)
    assert run.returncode == 0, run.explain()
    assert saw_tool_result(fake, MARKER), run.explain()
    assert AFTER_TOOL in run.stdout, run.explain()
    assert engine_paths(fake) == {case.engine.path}


@pytest.mark.parametrize("case", per_agent("engines"), indirect=True)
async def test_agent_runs_the_tool_the_engine_asks_for(case: Case) -> None:
    await check_reads_the_marker(case)


@pytest.mark.parametrize("case", per_agent("thinking_engines"), indirect=True)
async def test_agent_takes_thinking_before_a_tool_call(case: Case) -> None:
    await check_reads_the_marker(case, thinking=THOUGHT)


@pytest.mark.parametrize("case", per_agent("image_engines"), indirect=True)
async def test_agent_passes_an_image_to_the_engine(case: Case) -> None:
    fake, url = await case.served(case.engine.kind, VISION_MODEL)
    picture = case.workspace.work / "pic.png"
    png = write_png(picture)
    argv_of: tuple[str, ...]
    if case.agent.attach_flag is None:  # no flag attaches it: the engine asks for its read tool
        tool, arguments = case.agent.read_tool(picture)
        fake.reply_for = tool_round_trip(tool, arguments, text=AFTER_TOOL)
        argv_of, expected = ("look at pic.png",), AFTER_TOOL
    else:
        argv_of = ("what is in this picture", case.agent.attach_flag, picture.name)
        expected = WORDS  # the fake's default reply
    run = await case.launch(url, VISION_MODEL, *argv_of, images=True)
    assert run.returncode == 0, run.explain()
    assert saw_in_a_request(fake, png), "the image never reached the engine\n" + run.explain()
    assert expected in run.stdout, run.explain()
    assert engine_paths(fake) == {case.engine.path}
