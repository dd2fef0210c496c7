"""/api/show: what a model can do and how long its context is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelport.types import (
    Capabilities,
)


def context_window_from_show(show: Mapping[str, Any]) -> int | None:
    """The trained context: model_info[<architecture>.context_length]."""
    info = show.get("model_info")
    if not isinstance(info, dict):
        return None
    arch = info.get("general.architecture")
    if not isinstance(arch, str):
        return None
    value = info.get(arch + ".context_length")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def capabilities_from_show(show: Mapping[str, Any]) -> Capabilities:
    """From `capabilities`; builds too old to list them (or a show that failed) get tools
    and structured output, and nothing known of images or embeddings."""
    listed = show.get("capabilities")
    if not isinstance(listed, list):
        return Capabilities(tools=True, json_schema=True, vision=None, embeddings=None)
    return Capabilities(
        tools="tools" in listed,
        vision="vision" in listed,
        thinking="thinking" in listed,
        embeddings="embedding" in listed,
        # `format` takes a JSON schema for any generating model.
        json_schema="completion" in listed,
    )
