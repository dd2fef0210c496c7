"""The parsed TOML checked against the schema's types, key by key, before conversion.

The walk reads the structs' type information (`msgspec.inspect`), so the schema stays
the one place that says what a key holds, and every message is built here from what the
walk saw: the key's path, the type it wants and the TOML type it got.
"""

from __future__ import annotations

import difflib
from typing import Any

import msgspec
from msgspec import inspect

from modelport.config.errors import ConfigError, join_key

__all__ = ["check_shape", "toml_type"]


def check_shape(data: dict[str, Any], schema: type[msgspec.Struct]) -> None:
    """Raise ConfigError for the first unknown key, missing key or wrong type in `data`.

    Keys are visited in the file's order and a table's missing keys after its present
    ones, so the error named is the first a reader of the file would meet.
    """
    _check(data, inspect.type_info(schema), "")


def toml_type(value: object) -> str:
    """The name a TOML author knows for the type of a parsed value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    return type(value).__name__


def _check(value: Any, wanted: inspect.Type, path: str) -> None:
    if isinstance(wanted, inspect.UnionType):
        # The schema's unions are `X | None`, and TOML has no null: X is what a key holds.
        (wanted,) = [t for t in wanted.types if not isinstance(t, inspect.NoneType)]
    if not _fits(value, wanted):
        raise ConfigError(f"expected {_type_word(wanted)}, got {toml_type(value)}", key=path)
    if isinstance(wanted, inspect.StructType):
        _check_table(value, wanted, path)
    elif isinstance(wanted, inspect.VarTupleType | inspect.ListType):
        for index, item in enumerate(value):
            _check(item, wanted.item_type, f"{path}[{index}]")
    elif isinstance(wanted, inspect.DictType):
        for name, item in value.items():
            _check(item, wanted.value_type, join_key(path, name))


def _check_table(table: dict[str, Any], struct: inspect.StructType, path: str) -> None:
    fields = {f.encode_name: f for f in struct.fields}
    for name, item in table.items():
        known = fields.get(name)
        if known is None:
            raise ConfigError(f"unknown key{_suggestion(name, fields)}", key=join_key(path, name))
        _check(item, known.type, join_key(path, name))
    for name, known in fields.items():
        if known.required and name not in table:
            raise ConfigError("required key missing", key=join_key(path, name))


def _suggestion(name: str, fields: dict[str, Any]) -> str:
    """ " (did you mean 'x'?)" for a near miss of a key the table has."""
    close = difflib.get_close_matches(name, list(fields), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fits(value: Any, wanted: inspect.Type) -> bool:
    if isinstance(wanted, inspect.BoolType):
        return isinstance(value, bool)
    if isinstance(wanted, inspect.IntType):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(wanted, inspect.FloatType):  # an integer is a fine number of seconds
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(wanted, inspect.StrType):
        return isinstance(value, str)
    if isinstance(wanted, inspect.VarTupleType | inspect.ListType):
        return isinstance(value, list)
    if isinstance(wanted, inspect.StructType | inspect.DictType):
        return isinstance(value, dict)
    raise TypeError(f"the schema uses {wanted!r}, which check_shape does not know")


def _type_word(wanted: inspect.Type) -> str:
    if isinstance(wanted, inspect.VarTupleType | inspect.ListType):
        return "array of strings" if isinstance(wanted.item_type, inspect.StrType) else "array"
    if isinstance(wanted, inspect.StructType | inspect.DictType):
        return "table"
    words = {
        inspect.BoolType: "bool",
        inspect.IntType: "int",
        inspect.FloatType: "float",
        inspect.StrType: "str",
    }
    return words[type(wanted)]
