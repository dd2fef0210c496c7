"""The scenarios of the real-agent tier, one function each, run by test_agent_scenarios.py
(the gateway in front of one engine) and test_hub_scenarios.py (the gateway in hub mode,
its only backend a remote agent in front of the engine): the same checks on both paths.

A test module provides the `served` fixture (`fake, url, model = await served(kind,
model)`: the engine fake of that kind, the URL the agent is pointed at, and the model name
to ask for); the `case` fixture (conftest.py) builds a `Case` from it for the `(agent,
engine)` parameter that `per_agent` makes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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

#: which engines of an agent a scenario runs on: an AgentSpec attribute's name, or a function
EnginesOf = str | Callable[[AgentSpec], Sequence[Engine]]


def per_agent(engines_of: EnginesOf, prefix: str = "") -> list[object]:
    """A `case` parameter for every agent and each engine `engines_of` gives it; ids read
    `<prefix><agent>-<role>-<engine kind>`."""
    params: list[object] = []
    for agent in AGENT_SPECS:
        engines: Sequence[Engine] = (
            getattr(agent, engines_of) if isinstance(engines_of, str) else engines_of(agent)
        )
        for engine in engines:
            label = f"{prefix}{agent.name}-{engine.role}-{engine.kind}"
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


async def prints_the_engines_words(case: Case) -> None:
    fake, url, model = await case.served(case.engine.kind, MODEL)
    run = await case.launch(url, model, "say hi")
    assert run.returncode == 0, run.explain()
    assert WORDS in run.stdout, run.explain()
    assert engine_paths(fake) == {case.engine.path}


async def reads_the_marker(case: Case, thinking: str = "") -> None:
    """The engine asks for the agent's read tool on marker.txt (after `thinking`, if any)."""
    fake, url, model = await case.served(case.engine.kind, MODEL)
    tool, arguments = case.agent.read_tool(case.workspace.work / "marker.txt")
    fake.reply_for = tool_round_trip(tool, arguments, text=AFTER_TOOL, thinking=thinking)
    run = await case.launch(url, model, case.agent.read_prompt)
    assert run.returncode == 0, run.explain()
    assert saw_tool_result(fake, MARKER), run.explain()
    assert AFTER_TOOL in run.stdout, run.explain()
    assert engine_paths(fake) == {case.engine.path}


async def takes_thinking_before_a_tool_call(case: Case) -> None:
    await reads_the_marker(case, thinking=THOUGHT)


async def passes_an_image_to_the_engine(case: Case) -> None:
    fake, url, model = await case.served(case.engine.kind, VISION_MODEL)
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
    run = await case.launch(url, model, *argv_of, images=True)
    assert run.returncode == 0, run.explain()
    assert saw_in_a_request(fake, png), "the image never reached the engine\n" + run.explain()
    assert expected in run.stdout, run.explain()
    assert engine_paths(fake) == {case.engine.path}
