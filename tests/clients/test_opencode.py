"""opencode (pinned in agents.py) one-shot through the gateway, on an engine that speaks its
dialect (Chat Completions, through @ai-sdk/openai-compatible: passthrough) and on an engine
that speaks only Anthropic Messages (transcoded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients.conftest import Served
from tests.clients.harness import (
    AFTER_TOOL,
    MARKER,
    MODEL,
    WORDS,
    Workspace,
    engine_paths,
    opencode_env,
    run_agent,
    saw_tool_result,
    write_opencode_config,
)
from tests.fakes.turns import tool_round_trip

# 12-15 s pass before its first request on a loaded 2-core machine; a 5xx is retried for
# about 97 s.
TIMEOUT_S = 150

ENGINES = [
    pytest.param("openai", "/v1/chat/completions", id="passthrough-openai"),
    pytest.param("anthropic", "/v1/messages", id="transcoded-anthropic"),
]


@pytest.mark.parametrize(("kind", "engine_path"), ENGINES)
async def test_opencode_prints_the_engines_words(
    kind: str, engine_path: str, served: Served, workspace: Workspace, opencode_bin: Path
) -> None:
    fake, url = await served(kind)
    write_opencode_config(workspace.work, url, MODEL)
    run = await run_agent(
        [str(opencode_bin), "run", "say hi"],
        workspace,
        env=opencode_env(url + "/npm/"),
        timeout_s=TIMEOUT_S,
    )
    assert run.returncode == 0, run.explain()
    assert WORDS in run.stdout, run.explain()
    assert engine_paths(fake) == {engine_path}


@pytest.mark.parametrize(("kind", "engine_path"), ENGINES)
async def test_opencode_runs_the_command_the_engine_asks_for(
    kind: str, engine_path: str, served: Served, workspace: Workspace, opencode_bin: Path
) -> None:
    fake, url = await served(kind)
    write_opencode_config(workspace.work, url, MODEL)
    arguments = {"command": "cat marker.txt", "description": "Show marker.txt"}
    fake.reply_for = tool_round_trip("bash", arguments, text=AFTER_TOOL)
    run = await run_agent(
        [str(opencode_bin), "run", "show marker.txt"],
        workspace,
        env=opencode_env(url + "/npm/"),
        timeout_s=TIMEOUT_S,
    )
    assert run.returncode == 0, run.explain()
    assert saw_tool_result(fake, MARKER), run.explain()
    assert AFTER_TOOL in run.stdout, run.explain()
    assert engine_paths(fake) == {engine_path}
