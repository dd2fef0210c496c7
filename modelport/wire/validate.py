"""Request validation shared by every dialect: one wording per mistake.

Client input that does not fit raises InvalidRequest whose `param` names the field by its
path (`messages[0].content[1].type`) and whose message starts with that path, the way the
config loader words its errors:

    <param>: field required
    <param>: expected <what>, got <JSON type>
    <param>: must not be empty
    <param>: must be at least <min>          (a number below its API's range)
    <param>: must be at most <max>           (above it, or more than an engine takes)
    <param>: <value> is not supported
    <param>: <value> is not supported by <engine>: <why>   (refused_by, raises Unsupported)

so a client that makes the same mistake against /v1/chat/completions and /v1/messages reads
the same sentence. Each dialect's decoder says which fields exist; this module only says
how a field is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import msgspec

from modelport.errors import InvalidRequest, Unsupported

JSONObject = dict[str, Any]
_decode_json = msgspec.json.Decoder().decode

# How deep arrays and objects may nest in a request body (serde_json's default limit). Real
# clients stay far below: the deepest body in docs/captures/clients nests 16 levels (Codex's
# tool schemas). Deeper bodies are refused before anything walks them: msgspec, our
# validators and the encoders recurse, and 5,000 levels overflowed Python's stack.
MAX_NESTING = 128
# The largest token count any engine here takes: llama.cpp's n_predict and Ollama's runner
# hold it in a 32-bit int. A bigger max_tokens is refused, not passed on to overflow there.
INT32_MAX = 2**31 - 1
INT64 = 2**63  # seeds: OpenAI's and Ollama's are 64-bit integers


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
    """A request body as a JSON object; anything else is refused without a `param`. Every
    dialect's body comes through here, so this is where nesting is bounded (MAX_NESTING)."""
    if isinstance(body, Mapping):
        return dict(body)
    try:
        obj = _decode_json(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    except RecursionError:  # msgspec's own guard, some hundreds of levels down
        too_deep()
    if not isinstance(obj, dict):
        raise InvalidRequest(f"request body must be a JSON object, got {json_type(obj)}")
    if nests_deeper(obj, MAX_NESTING):
        too_deep()
    return obj


def relay_body(body: bytes) -> JSONObject:
    """A body on its way to an engine as it came (passthrough), as a JSON object: parsed,
    not walked again. Both callers of a relay (`ChatCall`, `CompletionsCall`) have passed
    it through `load_body`, nesting walk and value checks included; a model rename since
    changes neither. One walk per request on the hot path, not two."""
    try:
        obj = _decode_json(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        too_deep()
    if not isinstance(obj, dict):
        raise InvalidRequest(f"request body must be a JSON object, got {json_type(obj)}")
    return obj


def too_deep() -> NoReturn:
    raise InvalidRequest(
        f"request body nests arrays and objects more than {MAX_NESTING} levels deep"
    ) from None


def nests_deeper(obj: JSONObject, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels (the body is level 1).

    Level by level without recursion, so it cannot overflow the stack it protects; each
    level keeps only its containers, so the cost is one look at every value, once."""
    level: list[Any] = [obj]
    for _ in range(limit):
        below: list[Any] = []
        for container in level:
            values = container.values() if container.__class__ is dict else container
            below += [v for v in values if v.__class__ is dict or v.__class__ is list]
        if not below:
            return False
        level = below
    return True


# ---------------------------------------------------------------------------
# Value checks as data: the field tables (wire/*/fields.py) give each field one of these,
# and `check_values` applies them, so a range is said once and worded the same everywhere.


@dataclass(frozen=True, slots=True)
class Check:
    """What one field takes: a JSON type and, for numbers, a closed range."""

    kind: type | tuple[type, ...]
    what: str  # the type as the refusal says it: "an integer"
    low: float | None = None
    high: float | None = None

    def __call__(self, value: Any, param: str) -> Any:
        expect(value, self.kind, self.what, param)
        if self.low is not None and value < self.low:
            fail(param, f"must be at least {_shown(self.low)}")
        if self.high is not None and value > self.high:
            fail(param, f"must be at most {_shown(self.high)}")
        return value

    def admits(self, value: Any) -> bool:
        try:
            self(value, "")
        except InvalidRequest:
            return False
        return True

    def sample(self) -> Any:
        """A value this rule takes, for a field table's examples (a table's tests send one)."""
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if bool in kinds:
            return True
        if int in kinds:
            return self.low if self.low is not None else 1
        samples: dict[type, Any] = {str: "x", dict: {"x": "y"}, list: ["x"]}
        return samples[kinds[0]]

    def describe(self) -> str:
        """The rule as docs/fields.md says it: `integer 1..2147483647`."""
        what = self.what.removeprefix("an ").removeprefix("a ")
        if self.low is None and self.high is None:
            return what
        low = "" if self.low is None else _shown(self.low)
        high = "" if self.high is None else _shown(self.high)
        return f"{what} {low}..{high}"


def _shown(bound: float) -> str:
    """An integer bound exactly (2147483647), a float one short (3.40282e+38, 0.5)."""
    if isinstance(bound, int) or (bound.is_integer() and abs(bound) < 1e15):
        return str(int(bound))
    return f"{bound:g}"


def integer(low: float | None = None, high: float | None = None) -> Check:
    return Check(int, "an integer", low, high)


def number(low: float | None = None, high: float | None = None) -> Check:
    return Check((int, float), "a number", low, high)


BOOLEAN = Check(bool, "a boolean")
STRING = Check(str, "a string")
OBJECT = Check(dict, "an object")
ARRAY = Check(list, "an array")
STRING_OR_ARRAY = Check((str, list), "a string or an array")
STRINGS = Check(list, "an array of strings")
MESSAGES = Check(list, "an array of messages")
TOOLS = Check(list, "an array of tools")
STRING_OR_OBJECT = Check((str, dict), "a string or an object")
TOKENS = integer(1, INT32_MAX)  # max_tokens and its kin, in every dialect
SEED = integer(-INT64, INT64 - 1)


def check_values(checks: Mapping[str, Check], obj: Mapping[str, Any], path: str = "") -> None:
    """Each member of `obj` that `checks` names, unless null, checked by its rule."""
    for key, value in obj.items():
        check = checks.get(key)
        if check is not None and value is not None:
            check(value, at(path, key))
