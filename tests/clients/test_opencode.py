"""opencode (pinned in agents.py) one-shot through the gateway, on an engine that speaks its
dialect (Chat Completions, through @ai-sdk/openai-compatible: passthrough) and on an engine
that speaks only Anthropic Messages (transcoded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients.helpers import (
    AFTER_TOOL,
    MARKER,
    MODEL,
    THOUGHT,
    VISION_MODEL,
    WORDS,
    Served,
    Workspace,
    engine_paths,
    opencode_env,
    run_agent,
    saw_in_a_request,
    saw_tool_result,
    write_opencode_config,
    write_png,
)
from tests.fakes.turns import tool_round_trip

# 12-15 s pass before its first request on a loaded 2-core machine; a 5xx is retried for
# about 97 s, which should still end in a failure of its own, not the timeout.
TIMEOUT_S = 120

ENGINES = [
    pytest.param("openai", "/v1/chat/completions", id="passthrough-openai"),
    pytest.param("anthropic", "/v1/messages", id="transcoded-anthropic"),
]
# OpenAI's Chat Completions never stream reasoning: thinking is tried on a local engine
# that does (reasoning_content) and speaks only Chat Completions.
THINKING_ENGINES = [
    pytest.param("localai", "/v1/chat/completions", id="passthrough-localai"),
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


@pytest.mark.parametrize(("kind", "engine_path"), THINKING_ENGINES)
async def test_opencode_takes_thinking_before_a_tool_call(
    kind: str, engine_path: str, served: Served, workspace: Workspace, opencode_bin: Path
) -> None:
    fake, url = await served(kind)
    write_opencode_config(workspace.work, url, MODEL)
    arguments = {"command": "cat marker.txt", "description": "Show marker.txt"}
    fake.reply_for = tool_round_trip("bash", arguments, text=AFTER_TOOL, thinking=THOUGHT)
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


@pytest.mark.parametrize(("kind", "engine_path"), ENGINES)
async def test_opencode_sends_an_attached_image(
    kind: str, engine_path: str, served: Served, workspace: Workspace, opencode_bin: Path
) -> None:
    fake, url = await served(kind, VISION_MODEL)
    write_opencode_config(workspace.work, url, VISION_MODEL, images=True)
    png = write_png(workspace.work / "pic.png")
    # The prompt goes first: -f takes several values.
    run = await run_agent(
        [str(opencode_bin), "run", "what is in this picture", "-f", "pic.png"],
        workspace,
        env=opencode_env(url + "/npm/"),
        timeout_s=TIMEOUT_S,
    )
    assert run.returncode == 0, run.explain()
    assert saw_in_a_request(fake, png), "the image never reached the engine\n" + run.explain()
    assert WORDS in run.stdout, run.explain()
    assert engine_paths(fake) == {engine_path}
