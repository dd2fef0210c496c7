"""Where the real llama-server captures are: docs/captures in this repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

CAPTURES = Path(__file__).resolve().parents[1] / "docs" / "captures"

CLIENT_CAPTURES = CAPTURES / "clients"


class ClientRequest(NamedTuple):
    """One request a real agent sent to the recorder (docs/captures/clients/README.md)."""

    name: str  # "<scenario>#<seq>"
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


def client_requests(pattern: str) -> list[ClientRequest]:
    """Every POST with a JSON body in the client captures whose file name matches `pattern`."""
    found: list[ClientRequest] = []
    for path in sorted(CLIENT_CAPTURES.glob(pattern)):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row["method"] == "POST" and row["body_read_as"] == "json":
                name = f"{path.stem}#{row['seq']}"
                found.append(
                    ClientRequest(name, row["path"], row["query"], row["headers"], row["body"])
                )
    return found
