"""Where the real llama-server captures are: docs/captures in this repository."""

from __future__ import annotations

from pathlib import Path

CAPTURES = Path(__file__).resolve().parents[1] / "docs" / "captures"
