"""Where the real llama-server captures are: ../shared/captures beside the checkout."""

from __future__ import annotations

from pathlib import Path

_CANDIDATES = (
    Path(__file__).resolve().parents[2] / "shared" / "captures",
    Path("/work/shared/captures"),
)
CAPTURES = next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0])
