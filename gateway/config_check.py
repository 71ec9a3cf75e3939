"""Turn a config file's data into its Structs, or into one error a user can act on.

msgspec does the checking against the declared fields; this module adds what a person
editing YAML needs: short forms expanded first (`tls: self-signed`), case-insensitive
choices, and every error phrased as `<key path>: <what is wrong> (line N)`, naming the
allowed keys when a key is unknown and never repeating a credential.
"""

from __future__ import annotations

import re
import reprlib
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from msgspec import inspect

from gateway.config_model import DROP, SECRET_KEYS, ConfigError
from gateway.config_yaml import KeyPath, line_of

T = TypeVar("T")

_short = reprlib.Repr()
_short.maxstring = _short.maxother = 40
_short.maxlevel = 2


def shown(value: Any) -> str:
    """A value for an error message: repr() shortened, whatever its size or depth."""
    return _short.repr(value)


def convert(data: Any, model: type[T], lines: dict[KeyPath, int]) -> T:
    """`data` (from YAML) as a `model`, or ConfigError naming the key path and line."""
    root = _type_info(model)
    try:
        data = _expand(data, root, ())
        return msgspec.convert(data, model, dec_hook=_decode_extra)
    except _ShortFormError as exc:
        raise ConfigError(_with_line(f"{_dotted(exc.path)}: {exc.why}", lines, exc.path)) from None
    except msgspec.ValidationError as exc:
        path, text = _explain(str(exc), data, root)
        raise ConfigError(_with_line(text, lines, path)) from None


_TYPE_INFO: dict[type, inspect.Type] = {}  # a model's type tree, worked out once


def _type_info(model: type) -> inspect.Type:
    if model not in _TYPE_INFO:
        _TYPE_INFO[model] = inspect.type_info(model)
    return _TYPE_INFO[model]


def _decode_extra(kind: type, value: Any) -> Any:
    """Types msgspec does not know: a path is text in YAML."""
    if kind is Path and isinstance(value, str):
        return Path(value).expanduser()
    raise ValueError("must be a path (text)" if kind is Path else f"is not a {kind.__name__}")


# --- short forms, before validation -------------------------------------------------------


class _ShortFormError(Exception):
    def __init__(self, path: KeyPath, why: str) -> None:
        super().__init__(why)
        self.path, self.why = path, why


def _expand(value: Any, kind: inspect.Type, path: KeyPath) -> Any:
    """Rewrite the short forms YAML allows into what the Structs declare."""
    if isinstance(kind, inspect.Metadata):
        convert_short = (kind.extra or {}).get("shorthand")
        if convert_short is not None:
            try:
                value = convert_short(value)
            except ValueError as exc:
                raise _ShortFormError(path, str(exc)) from None
            if value is DROP:
                return DROP
        kind = kind.type
    if isinstance(kind, inspect.UnionType):
        choices = [t for t in kind.types if not isinstance(t, inspect.NoneType)]
        if value is None and len(choices) < len(kind.types):
            return None
        if len(choices) != 1:
            return value
        kind = choices[0]
    if isinstance(kind, inspect.LiteralType):
        return _literal(value, kind.values)
    if isinstance(kind, inspect.IntType) and isinstance(value, float) and value.is_integer():
        return int(value)  # `port: 80.0`
    if isinstance(kind, inspect.VarTupleType | inspect.ListType):
        item = _unwrap(kind.item_type)
        if isinstance(value, str) and isinstance(item, inspect.StrType):
            return [value]  # a list of one may be written as the one
        if isinstance(value, list):
            return [_expand(v, kind.item_type, (*path, i)) for i, v in enumerate(value)]
        return value
    if isinstance(kind, inspect.StructType) and isinstance(value, dict):
        fields = {f.encode_name: f for f in kind.fields}
        expanded = {}
        for key, item in value.items():
            field = fields.get(key) if isinstance(key, str) else None
            item = item if field is None else _expand(item, field.type, (*path, key))
            if item is not DROP:
                expanded[key] = item
        return expanded
    return value


def _literal(value: Any, choices: tuple[Any, ...]) -> Any:
    if isinstance(value, str) and value.lower() in choices:
        return value.lower()  # `transport: TCP`
    if isinstance(value, int | float) and not isinstance(value, bool) and str(value) in choices:
        return str(value)  # YAML reads `protocol: 5` as a number
    return value


def _unwrap(kind: inspect.Type) -> inspect.Type:
    """The type itself, without annotations or `| None`."""
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


# --- errors -------------------------------------------------------------------------------

_WHERE = re.compile(r"^(?P<what>.*?)(?: - at `(?P<at>\$[^`]*)`)?$", re.DOTALL)
_KEY_WHERE = re.compile(r"^(?P<what>.*?) - at `key` in `(?P<at>\$[^`]*)`$", re.DOTALL)
_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
# A section's own check names its field first: "password: needs `username` too".
_OWN_CHECK = re.compile(
    r"^(?P<key>[a-z_][a-z0-9_]*(?:\[\d+\])*(?:\.[a-z_][a-z0-9_]*(?:\[\d+\])*)*): (?P<why>.+)$",
    re.DOTALL,
)


def _explain(message: str, data: Any, root: inspect.Type) -> tuple[KeyPath, str]:
    """msgspec's message as `<key path>: <what is wrong>`, with the path as a tuple."""
    keyed = _KEY_WHERE.match(message)
    if keyed:
        path = _parse_path(keyed["at"])
        mapping = _value_at(data, path)
        odd = [k for k in mapping if not isinstance(k, str)] if isinstance(mapping, dict) else []
        if odd:  # YAML's scalar text of the key is what the line map knows it by
            line_key = str(odd[0]).lower() if isinstance(odd[0], bool) else str(odd[0])
            where = (*path, line_key)
            return where, f"{_dotted(path) or 'config'}: key {shown(odd[0])} must be a string"
        return path, f"{_dotted(path) or 'config'}: every key must be a string"
    match = _WHERE.match(message)
    assert match is not None  # the pattern matches any text
    what, path = match["what"], _parse_path(match["at"] or "$")
    kind = _type_at(root, path)
    if found := re.match(r"Object contains unknown field `(.*)`$", what):
        allowed = ", ".join(sorted(f.encode_name for f in _struct_fields(kind)))
        path = (*path, found[1])
        return path, f"{_dotted(path)}: unknown key (allowed: {allowed})"
    if found := re.match(r"Object missing required field `(.*)`$", what):
        path = (*path, found[1])
        return path, f"{_dotted(path)}: missing"
    if own := _OWN_CHECK.match(what):
        inner = _parse_path("$." + own["key"])
        path = (*path, *inner)
        return path, f"{_dotted(path)}: {own['why']}"
    if what.startswith(("Expected", "Invalid enum value")):
        return (
            path,
            f"{_dotted(path) or 'config'}: {_wrong_value(_value_at(data, path), kind, path)}",
        )
    return path, f"{_dotted(path) or 'config'}: {what}"


def _wrong_value(value: Any, kind: inspect.Type | None, path: KeyPath) -> str:
    secret = bool(path) and path[-1] in SECRET_KEYS
    plain = _unwrap(kind) if kind is not None else None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    said = "" if secret else f"{shown(value)} "
    if isinstance(plain, inspect.LiteralType):
        return f"{said}is not one of {', '.join(str(v) for v in plain.values)}"
    if isinstance(plain, inspect.IntType | inspect.FloatType):
        if isinstance(plain, inspect.IntType) and number and not float(value).is_integer():
            return f"{said}must be a whole number"
        if number:
            return f"{said}must be {_bounds(plain)}"
        return f"{said}must be a number"
    if isinstance(plain, inspect.BoolType):
        return f"{said}must be true or false"
    if isinstance(plain, inspect.StrType):
        if secret and number:  # YAML reads `password: 012345` as the number 12345
            return "must be text: put it in quotes"
        if isinstance(value, str):
            return "must be a non-empty string"
        return "must be a string"
    if isinstance(plain, inspect.VarTupleType | inspect.ListType):
        return "must be a non-empty list" if isinstance(value, list) else "must be a list"
    if isinstance(plain, inspect.StructType):
        return "must be a mapping (key: value pairs)"
    return f"{said}is not a valid value"


def _bounds(kind: inspect.IntType | inspect.FloatType) -> str:
    low = kind.ge if kind.ge is not None else kind.gt
    high = kind.le if kind.le is not None else kind.lt
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}"
    if low is not None:
        return f"at least {low:g}" if kind.ge is not None else f"more than {low:g}"
    if high is not None:
        return f"at most {high:g}" if kind.le is not None else f"less than {high:g}"
    return "a number"


def _parse_path(text: str) -> KeyPath:
    return tuple(int(index) if index else name for name, index in _PART.findall(text[1:]))


def _dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _value_at(data: Any, path: KeyPath) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _type_at(root: inspect.Type, path: KeyPath) -> inspect.Type | None:
    """The declared type at `path`, following structs, lists and optional values."""
    kind: inspect.Type | None = root
    for part in path:
        plain = _unwrap(kind) if kind is not None else None
        if isinstance(plain, inspect.UnionType):  # e.g. `bool | MqttTls`: the mapping
            plain = next((t for t in plain.types if isinstance(t, inspect.StructType)), None)
        if isinstance(part, int) and isinstance(plain, inspect.VarTupleType | inspect.ListType):
            kind = plain.item_type
        elif isinstance(part, str) and isinstance(plain, inspect.StructType):
            kind = next((f.type for f in plain.fields if f.encode_name == part), None)
        else:
            return None
    return kind


def _struct_fields(kind: inspect.Type | None) -> tuple[inspect.Field, ...]:
    plain = _unwrap(kind) if kind is not None else None
    if isinstance(plain, inspect.UnionType):
        plain = next((t for t in plain.types if isinstance(t, inspect.StructType)), None)
    return plain.fields if isinstance(plain, inspect.StructType) else ()


def _with_line(text: str, lines: dict[KeyPath, int], path: KeyPath) -> str:
    line = line_of(lines, path)
    return f"{text} (line {line})" if line is not None else text
