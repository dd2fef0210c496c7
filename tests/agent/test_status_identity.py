"""`agent status` reads the identity file with the reader `agent run` uses
(identity.public_fields), so a file `run` refuses never looks fine on the status page."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.agent.identity import IdentityError, create, load
from modelport.agent.status import render_status
from tests.agent.test_status import agent_config


def test_a_file_run_refuses_is_not_shown_as_fine(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    public = create(path).public_key_b64
    # A stray line without `key: value` inside the block: identity.rs's parser, and ours,
    # refuse the file (the line itself is never quoted: it may be a secret).
    good = path.read_text()
    path.write_text(good.replace("version: 1\n", "version: 1\nstray-secret-looking-line\n"))
    with pytest.raises(IdentityError):
        load(path)
    text = render_status(agent_config(tmp_path, "127.0.0.1:1"), env={}, timeout_s=0.2)
    assert "cannot read it: not an agent identity file (malformed line 3" in text
    assert public not in text and "stray-secret-looking-line" not in text
    path.write_text(good)
    text = render_status(agent_config(tmp_path, "127.0.0.1:1"), env={}, timeout_s=0.2)
    assert public in text and "secret" not in text
