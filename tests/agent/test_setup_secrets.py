"""agent.toml as setup writes it holds no usable part of the host token: setup.rs's
short_secret writes a token of up to 16 characters whole and shows 12 of a 17-character
one; ours shows its ends only when at least 24 characters stay hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.agent.setup import Paired, render_config


@pytest.mark.parametrize("token", ["ht_0123456789ab", "ht_live_0123456789abcdefghij"])
def test_a_short_host_token_is_not_written(token: str) -> None:
    text = render_config(
        ws_url="wss://hub.example/provider/connect",
        key_path=Path("/k"),
        public_key_b64="cHVi",
        engines=[],
        paired=Paired(token, "prov-1", ()),
    )
    line = next(line for line in text.splitlines() if "host_token" in line)
    assert line == '# host_token     = "…"  (paired)'
    assert token[:8] not in text and token[-4:] not in text
