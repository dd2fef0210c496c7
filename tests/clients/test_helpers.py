"""The tier's own machinery: isolation of the agent's environment, and no process left behind
however a run ends."""

from __future__ import annotations

import os
from pathlib import Path

from tests.clients.helpers import Workspace, kill_strays, run_agent


async def test_the_agent_sees_only_its_own_environment(tmp_path: Path) -> None:
    workspace = Workspace.under(tmp_path)
    os.environ["MODELPORT_TIER_LEAK_CHECK"] = "leaked"  # the test process's env must not pass
    try:
        run = await run_agent(["sh", "-c", "env; pwd"], workspace, env={"X": "1"}, timeout_s=30)
    finally:
        del os.environ["MODELPORT_TIER_LEAK_CHECK"]
    assert run.returncode == 0, run.explain()
    *lines, cwd = run.stdout.splitlines()
    names = {line.split("=", 1)[0] for line in lines}
    assert names - {"PWD", "SHLVL", "_", "OLDPWD"} == {"PATH", "HOME", "TERM", "LANG", "X"}
    assert f"HOME={workspace.home}" in lines
    assert cwd == str(workspace.work)


async def test_a_timed_out_run_leaves_no_process_behind(tmp_path: Path) -> None:
    workspace = Workspace.under(tmp_path)
    # A child in the agent's group, and one that left it with setsid.
    script = "sleep 60 & setsid sleep 60 & echo started; sleep 60"
    run = await run_agent(["sh", "-c", script], workspace, env={}, timeout_s=1.0)
    assert run.returncode is None, run.explain()
    assert run.stdout == "started\n"  # what it printed before the timeout is kept
    assert run.seconds < 10
    assert len(run.strays) == 1  # the setsid one, found by its $HOME and killed
    assert kill_strays(workspace.home) == []


async def test_children_do_not_outlive_an_agent_that_exits(tmp_path: Path) -> None:
    workspace = Workspace.under(tmp_path)
    run = await run_agent(["sh", "-c", "sleep 60 & exit 3"], workspace, env={}, timeout_s=30)
    assert run.returncode == 3
    assert run.strays == []  # killed with the group, before the sweep
    assert kill_strays(workspace.home) == []
