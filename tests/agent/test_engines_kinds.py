"""The kinds agent.toml accepts beyond usepod-agent's (docs/agent.md, Config: `localai`
and `openai-compatible` with a url, `openai` and `anthropic` with a key) are served: the
loader accepts them, so AgentEngines must build them rather than skip them as unknown."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.agent.config import BackendEntry
from modelport.agent.status import render_status
from modelport.cli.agent import summary
from tests.agent.test_engines import config, offered, start, started  # noqa: F401 (fixture)


async def test_the_kinds_only_modelport_accepts_are_offered(
    fake_engine,
    started,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    entries = []
    for n, kind in enumerate(("localai", "openai", "anthropic"), start=1):
        fake = await fake_engine(kind, models=[f"m{n}"], api_key="sk-byok" if n > 1 else None)
        key = {"api_key_env": "BYOK_KEY"} if n > 1 else {}
        entries.append(BackendEntry(kind=kind, url=fake.url, **key))  # type: ignore[arg-type]
    generic = await fake_engine("vllm", models=["m4"])
    entries.append(BackendEntry(kind="openai-compatible", url=generic.url))
    engines = await start(started, config(tmp_path, *entries))
    assert [(model, backend) for model, backend, _ in offered(engines.capabilities())] == [
        ("m1", "localai"),
        ("m2", "openai"),
        ("m3", "anthropic"),
        ("m4", "openai-compatible"),
    ]


def test_status_and_validate_say_a_blank_key_is_not_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rule for "the key is set" (engines.api_key_of): a blank variable is skipped by
    run, so validate and status must not call it set; an `openai` row is a keyed row."""
    monkeypatch.setenv("BLANK_KEY", "  ")
    cfg = config(tmp_path, BackendEntry(kind="openai", api_key_env="BLANK_KEY"))
    assert "key from $BLANK_KEY (not set here)" in summary(cfg)
    page = render_status(cfg, env={"BLANK_KEY": "  "}, timeout_s=0.2)
    assert "key from $BLANK_KEY (NOT SET)" in page
