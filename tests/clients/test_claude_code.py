"""Claude Code (pinned in agents.py) one-shot through the gateway, on an engine that speaks its
dialect (Anthropic Messages: passthrough) and on an OpenAI-only engine (transcoded)."""

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
    claude_code_env,
    engine_paths,
    run_agent,
    saw_in_a_request,
    saw_tool_result,
    write_png,
)
from tests.fakes.turns import tool_round_trip

# It answers in about a second; a 400 makes it retry 6 times within 2 s. Eight runs at most
# this long each keep the worst case of the tier within CI's budget.
TIMEOUT_S = 45

ENGINES = [
    pytest.param("anthropic", "/v1/messages", id="passthrough-anthropic"),
    pytest.param("openai", "/v1/chat/completions", id="transcoded-openai"),
]
# OpenAI's Chat Completions never stream reasoning: thinking is tried on a local engine
# that does (reasoning_content) and speaks only Chat Completions.
THINKING_ENGINES = [
    pytest.param("anthropic", "/v1/messages", id="passthrough-anthropic"),
    pytest.param("localai", "/v1/chat/completions", id="transcoded-localai"),
]


@pytest.mark.parametrize(("kind", "engine_path"), ENGINES)
async def test_claude_code_prints_the_engines_words(
    kind: str, engine_path: str, served: Served, workspace: Workspace, claude_bin: Path
) -> None:
    fake, url = await served(kind)
    run = await run_agent(
        [str(claude_bin), "-p", "say hi"],
        workspace,
        env=claude_code_env(url, MODEL),
        timeout_s=TIMEOUT_S,
    )
    assert run.returncode == 0, run.explain()
    assert WORDS in run.stdout, run.explain()
    assert engine_paths(fake) == {engine_path}


@pytest.mark.parametrize(("kind", "engine_path"), ENGINES)
async def test_claude_code_reads_the_file_the_engine_asks_for(
    kind: str, engine_path: str, served: Served, workspace: Workspace, claude_bin: Path
) -> None:
    fake, url = await served(kind)
    marker = workspace.work / "marker.txt"
    fake.reply_for = tool_round_trip("Read", {"file_path": str(marker)}, text=AFTER_TOOL)
    run = await run_agent(
        [str(claude_bin), "-p", "read marker.txt"],
        workspace,
        env=claude_code_env(url, MODEL),
        timeout_s=TIMEOUT_S,
    )
    assert run.returncode == 0, run.explain()
    assert saw_tool_result(fake, MARKER), run.explain()
    assert AFTER_TOOL in run.stdout, run.explain()
    assert engine_paths(fake) == {engine_path}


@pytest.mark.parametrize(("kind", "engine_path"), THINKING_ENGINES)
async def test_claude_code_takes_thinking_before_a_tool_call(
    kind: str, engine_path: str, served: Served, workspace: Workspace, claude_bin: Path
) -> None:
    fake, url = await served(kind)
    marker = workspace.work / "marker.txt"
    fake.reply_for = tool_round_trip(
        "Read", {"file_path": str(marker)}, text=AFTER_TOOL, thinking=THOUGHT
    )
    run = await run_agent(
        [str(claude_bin), "-p", "read marker.txt"],
        workspace,
        env=claude_code_env(url, MODEL),
        timeout_s=TIMEOUT_S,
    )
    assert run.returncode == 0, run.explain()
    assert saw_tool_result(fake, MARKER), run.explain()
    assert AFTER_TOOL in run.stdout, run.explain()
    assert engine_paths(fake) == {engine_path}


@pytest.mark.parametrize(("kind", "engine_path"), ENGINES)
async def test_claude_code_reads_an_image_for_the_engine(
    kind: str, engine_path: str, served: Served, workspace: Workspace, claude_bin: Path
) -> None:
    fake, url = await served(kind, VISION_MODEL)
    picture = workspace.work / "pic.png"
    png = write_png(picture)
    fake.reply_for = tool_round_trip("Read", {"file_path": str(picture)}, text=AFTER_TOOL)
    run = await run_agent(
        [str(claude_bin), "-p", "look at pic.png"],
        workspace,
        env=claude_code_env(url, VISION_MODEL),
        timeout_s=TIMEOUT_S,
    )
    assert run.returncode == 0, run.explain()
    assert saw_in_a_request(fake, png), "the image never reached the engine\n" + run.explain()
    assert AFTER_TOOL in run.stdout, run.explain()
    assert engine_paths(fake) == {engine_path}
