"""The key reference of docs/configuration.md, written from the declared fields.

`python -m gateway.config_reference` prints it; a test checks the document holds exactly
this, so the reference cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from msgspec import inspect

from gateway.config import Config


def reference() -> str:
    rows = ["| key | value | default |", "|---|---|---|"]
    rows += [f"| `{key}` | {value} | {default} |" for key, value, default in _rows()]
    return "\n".join(rows) + "\n"


def _rows() -> Iterator[tuple[str, str, str]]:
    yield from _struct_rows(inspect.type_info(Config), "")


def _struct_rows(kind: inspect.Type, prefix: str) -> Iterator[tuple[str, str, str]]:
    assert isinstance(kind, inspect.StructType)
    for field in kind.fields:
        key = f"{prefix}{field.encode_name}"
        inner = _section(field.type)
        if inner is None:
            yield key, _describe(field.type), _default(field)
        elif _is_list(field.type):
            yield key, "list of sections", _default(field)
            yield from _struct_rows(inner, f"{key}[].")
        else:
            yield key, "section", "none" if _optional(field.type) else "its defaults"
            yield from _struct_rows(inner, f"{key}.")


def _section(kind: inspect.Type) -> inspect.StructType | None:
    kind = _plain(kind)
    if isinstance(kind, inspect.VarTupleType | inspect.ListType):
        kind = _plain(kind.item_type)
    return kind if isinstance(kind, inspect.StructType) else None


def _is_list(kind: inspect.Type) -> bool:
    return isinstance(_plain(kind), inspect.VarTupleType | inspect.ListType)


def _optional(kind: inspect.Type) -> bool:
    kind = kind.type if isinstance(kind, inspect.Metadata) else kind
    return isinstance(kind, inspect.UnionType) and any(
        isinstance(t, inspect.NoneType) for t in kind.types
    )


def _plain(kind: inspect.Type) -> inspect.Type:
    while True:
        if isinstance(kind, inspect.Metadata):
            kind = kind.type
        elif isinstance(kind, inspect.UnionType):
            choices = [t for t in kind.types if not isinstance(t, inspect.NoneType)]
            if len(choices) != 1:
                return kind
            kind = choices[0]
        else:
            return kind


def _describe(kind: inspect.Type) -> str:
    plain = _plain(kind)
    if isinstance(plain, inspect.IntType | inspect.FloatType):
        name = "whole number" if isinstance(plain, inspect.IntType) else "number"
        low, high = plain.ge, plain.le
        if low is not None and high is not None:
            return f"{name}, {_number(low)} to {_number(high)}"
        return name
    if isinstance(plain, inspect.BoolType):
        return "true or false"
    if isinstance(plain, inspect.LiteralType):
        return " or ".join(f"`{v}`" for v in plain.values)
    if isinstance(plain, inspect.StrType):
        return "text"
    if isinstance(plain, inspect.VarTupleType | inspect.ListType):
        return f"list of {_describe(plain.item_type)}"
    if isinstance(plain, inspect.TupleType):
        return "`HOST:PORT`, `:PORT` or `PORT`"
    if isinstance(plain, inspect.CustomType):
        return "path"
    return "see below"


def _number(value: float) -> str:
    return f"{value:,}" if float(value).is_integer() and abs(value) >= 10_000 else f"{value:g}"


def _default(field: inspect.Field) -> str:
    words = _words(field.type)
    if words is not None:
        return words
    if field.required:
        return "required"
    value: Any = field.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "`[]`" if not value else "`" + ":".join(str(v) for v in value) + "`"
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def _words(kind: inspect.Type) -> str | None:
    """A default worked out in code, as declared by config_model.default_in_words()."""
    while isinstance(kind, inspect.Metadata):
        if kind.extra and "default" in kind.extra:
            return str(kind.extra["default"])
        kind = kind.type
    return None


if __name__ == "__main__":
    print(reference(), end="")
