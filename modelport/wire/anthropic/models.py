"""/v1/models and /v1/models/{model_id} in Anthropic's shape, with its cursor pagination.

From Anthropic's API reference (Models: List Models, Get a Model) and the Python SDK's
`ModelInfo` and `SyncPage`: a model is `type: "model"`, `id`, `display_name`,
`created_at` (RFC 3339; "may be set to an epoch value if the release date is unknown"),
`max_input_tokens`, `max_tokens` (both nullable), and `lifecycle` (required by the SDK's
type; ours are all "active"). A list is `data`, `has_more`, `first_id`, `last_id`; the
query is `limit` (1 to 1000, default 20), `after_id` (the page right after that id) and
`before_id` (the page right before it). `has_more` says whether more remain in the
direction asked: the SDK pages on with `after_id = last_id`, or `before_id = first_id`
when the first request had `before_id`.

Not served: `capabilities` (optional in the SDK; every key of it is required once present
and most name Anthropic's server features, which no local engine has).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from modelport.types import BackendModel
from modelport.wire.openai.models import created_of
from modelport.wire.validate import fail

JSONObject = dict[str, Any]
_encode = msgspec.json.Encoder().encode

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
EPOCH = "1970-01-01T00:00:00Z"


class PageQuery(msgspec.Struct, frozen=True, kw_only=True):
    limit: int = DEFAULT_LIMIT
    after_id: str | None = None
    before_id: str | None = None


class Page(msgspec.Struct, frozen=True, kw_only=True):
    """Which slice of the listing to send: `ids[start:end]`, and whether more remain."""

    start: int
    end: int
    has_more: bool


def decode_page_query(query: Mapping[str, str]) -> PageQuery:
    """The list's query string, validated: a bad `limit` or two cursors are a 400."""
    raw = query.get("limit")
    limit = DEFAULT_LIMIT
    if raw is not None:
        try:
            limit = int(raw)
        except ValueError:
            fail("limit", f"expected an integer, got {raw!r}")
        if not 1 <= limit <= MAX_LIMIT:
            fail("limit", f"must be between 1 and {MAX_LIMIT}")
    after_id = query.get("after_id") or None
    before_id = query.get("before_id") or None
    if after_id is not None and before_id is not None:
        fail("before_id", "cannot be given with after_id")
    return PageQuery(limit=limit, after_id=after_id, before_id=before_id)


def page(ids: Sequence[str], query: PageQuery) -> Page:
    """The slice of `ids` the query asks for; an id the listing lacks as a cursor is a 400."""
    if query.before_id is not None:
        end = _index(ids, query.before_id, "before_id")
        start = max(0, end - query.limit)
        return Page(start=start, end=end, has_more=start > 0)
    start = 0 if query.after_id is None else _index(ids, query.after_id, "after_id") + 1
    end = min(len(ids), start + query.limit)
    return Page(start=start, end=end, has_more=end < len(ids))


def _index(ids: Sequence[str], cursor: str, param: str) -> int:
    try:
        return ids.index(cursor)
    except ValueError:
        fail(param, f"{cursor!r} is not a model id listed here")


def created_at(native: Mapping[str, Any]) -> str:
    """The engine's `created_at` (Anthropic) or `created` (OpenAI-style Unix seconds) as
    RFC 3339, else the epoch, as Anthropic does for an unknown date."""
    given = native.get("created_at")
    if isinstance(given, str) and given:
        return given
    seconds = created_of(native)
    if not seconds:
        return EPOCH
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def model_info(model: BackendModel) -> JSONObject:
    """One model as `ModelInfo`. `max_tokens` is the engine's own word where it has one
    (Anthropic engines), else the context window: no answer can be longer than that."""
    native = model.native
    name = native.get("display_name")
    max_tokens = native.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        max_tokens = model.context_window
    return {
        "type": "model",
        "id": model.id,
        "display_name": name if isinstance(name, str) and name else model.id,
        "created_at": created_at(native),
        "max_input_tokens": model.context_window,
        "max_tokens": max_tokens,
        "lifecycle": "active",
    }


def encode_model_page(infos: Iterable[JSONObject], *, has_more: bool) -> bytes:
    data = list(infos)
    return _encode(
        {
            "data": data,
            "has_more": has_more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    )


def encode_model_info(info: JSONObject) -> bytes:
    return _encode(info)
