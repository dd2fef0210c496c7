"""Request validation shared by every dialect: one wording per mistake.

Client input that does not fit raises InvalidRequest whose `param` names the field by its
path (`messages[0].content[1].type`) and whose message starts with that path, the way the
config loader words its errors:

    <param>: field required
    <param>: expected <what>, got <JSON type>
    <param>: must not be empty
    <param>: <value> is not supported
    <param>: <value> is not supported by <engine>: <why>   (refused_by, raises Unsupported)

so a client that makes the same mistake against /v1/chat/completions and /v1/messages reads
the same sentence. Each dialect's decoder says which fields exist; this module only says
how a field is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import msgspec

from modelport.errors import InvalidRequest, Unsupported

JSONObject = dict[str, Any]
_decode_json = msgspec.json.Decoder().decode


def fail(param: str, problem: str) -> NoReturn:
    """Refuse the request: `problem` is said of the field at `param`."""
    raise InvalidRequest(f"{param}: {problem}", param=param)


def at(path: str, key: str | int) -> str:
    """The path of a member: `messages[0]`, `messages[0].content`, or `model` at the top."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def json_type(value: Any) -> str:
    """What a client would call the value it sent."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def expect(value: Any, kind: type | tuple[type, ...], what: str, param: str) -> Any:
    """`value` if it is a `kind` (a bool is no number here), else refuse it as not `what`."""
    # One isinstance on the common path; a bool (an int to Python) is looked at again.
    if isinstance(value, kind) and (value.__class__ is not bool or _admits_bool(kind)):
        return value
    expected(param, what, value)


def _admits_bool(kind: type | tuple[type, ...]) -> bool:
    return kind is bool or (isinstance(kind, tuple) and bool in kind)


def expected(param: str, what: str, value: Any) -> NoReturn:
    """Refuse `value` at `param` for not being `what`."""
    fail(param, f"expected {what}, got {json_type(value)}")


def unsupported(param: str, value: Any) -> NoReturn:
    fail(param, f"{value!r} is not supported")


def refused_by(param: str, value: Any, engine: str, why: str = "") -> NoReturn:
    """A field the chosen engine has nothing for: refused rather than dropped in silence
    (docs/fields.md). Unsupported, so OpenAI's dialects answer it with code `unsupported`."""
    reason = f": {why}" if why else ""
    shown = msgspec.json.encode(value).decode()
    if len(shown) > 60:
        shown = shown[:57] + "..."
    raise Unsupported(f"{param}: {shown} is not supported by {engine}{reason}", param=param)


def required(obj: Mapping[str, Any], key: str, param: str) -> Any:
    """The member `key`; absent or null, the request is refused."""
    value = obj.get(key)
    if value is None:
        fail(param, "field required")
    return value


def text(obj: Mapping[str, Any], key: str, param: str) -> str:
    """A required string member."""
    value = obj.get(key)
    if isinstance(value, str):  # the common case first: these run for every field of a request
        return value
    if value is None:
        fail(param, "field required")
    expected(param, "a string", value)


def non_empty_text(obj: Mapping[str, Any], key: str, param: str) -> str:
    value = text(obj, key, param)
    if not value:
        fail(param, "must not be empty")
    return value


def optional(
    obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str, param: str
) -> Any:
    """The member `key` if present and not null (then it must be a `kind`), else None."""
    value = obj.get(key)
    return None if value is None else expect(value, kind, what, param)


def optional_text(obj: Mapping[str, Any], key: str, param: str) -> str | None:
    value = obj.get(key)
    return value if value is None else expect(value, str, "a string", param)


def optional_int(obj: Mapping[str, Any], key: str, param: str) -> int | None:
    value = obj.get(key)
    return value if value is None else expect(value, int, "an integer", param)


def optional_number(obj: Mapping[str, Any], key: str, param: str) -> float | None:
    value = obj.get(key)
    return value if value is None else float(expect(value, (int, float), "a number", param))


def optional_bool(obj: Mapping[str, Any], key: str, param: str) -> bool | None:
    value = obj.get(key)
    return value if value is None else expect(value, bool, "a boolean", param)


def an_object(value: Any, param: str) -> JSONObject:
    result: JSONObject = expect(value, dict, "an object", param)
    return result


def an_array(value: Any, param: str, what: str = "an array") -> list[Any]:
    result: list[Any] = expect(value, list, what, param)
    return result


def strings(value: Any, param: str) -> tuple[str, ...]:
    """An array of strings; the first non-string is named by its index."""
    items = an_array(value, param, "an array of strings")
    return tuple(expect(v, str, "a string", at(param, i)) for i, v in enumerate(items))


def is_token_id(value: Any) -> bool:
    """A token id: a non-negative integer, never a boolean."""
    return value.__class__ is int and value >= 0


def token_ids(value: Any, param: str) -> tuple[int, ...]:
    """A non-empty array of token ids (a prompt or an embeddings input given as tokens);
    the first that is not one is named by its index."""
    items = an_array(value, param, "an array of token ids")
    if not items:
        fail(param, "must not be empty")
    for i, item in enumerate(items):
        if not is_token_id(item):
            expected(at(param, i), "a token id", item)
    return tuple(items)


def tool_arguments(raw: Any, param: str) -> dict[str, Any]:
    """A client's tool-call arguments: a JSON object encoded as a string (absent or empty is
    no arguments); an object as such is taken too, as lenient engines send it."""
    if isinstance(raw, dict):
        return raw
    if raw is None or raw == "":
        return {}
    expect(raw, str, "a JSON string", param)
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        fail(param, "is not valid JSON")
    result: dict[str, Any] = expect(value, dict, "a JSON object encoded as a string", param)
    return result


def load_body(body: bytes | str | Mapping[str, Any]) -> JSONObject:
    """A request body as a JSON object; anything else is refused without a `param`."""
    if isinstance(body, Mapping):
        return dict(body)
    try:
        obj = _decode_json(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidRequest(f"request body must be a JSON object, got {json_type(obj)}")
    return obj
