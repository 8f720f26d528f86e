"""TOML tables read into frozen dataclasses, checked on the way in.

The data files (platforms/*.toml, hil.toml) are read by one parser so that
each rejects a misspelt key with "did you mean", and every error names the
file, the key (`table.key`), the problem and the fix. A dataclass declares
its keys as fields; `entry()` attaches the field's documentation, unit and
range check, which docs/platforms.md is generated from.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .errors import UsageError

log = logging.getLogger(__name__)

T = TypeVar("T")

@dataclass(frozen=True)
class Rule:
    """What a key means (`doc`), its unit, its check and an example value."""

    doc: str
    unit: str = ""
    check: Check | None = None
    example: str = ""


def entry(doc: str, default: Any = dataclasses.MISSING, *, unit: str = "", check: Check | None = None,
          example: str = "") -> Any:
    """A dataclass field that is a key of a TOML table (no default: required)."""
    meta = {"rule": Rule(doc, unit, check, example)}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple or None for a mutable default")
    return dataclasses.field(default=default, metadata=meta)


def did_you_mean(key: str, allowed: Iterable[str]) -> str:
    """The fix for an unknown key: the closest known one, or the known ones."""
    names = sorted(allowed)
    close = difflib.get_close_matches(key, names, n=1)
    return f"did you mean `{close[0]}`?" if close else f"allowed here: {', '.join(names) or 'no keys'}"


# -- checks -------------------------------------------------------------------------

@dataclass(frozen=True)
class Check:
    """A range, shape or kind check: called with a value, it returns the
    problem (None when the value is fine); `text` says the rule in the docs."""

    problem: Callable[[Any], str | None]
    text: str
    choices: tuple[str, ...] = ()

    def __call__(self, value: Any) -> str | None:
        return self.problem(value)


positive = Check(lambda v: None if v > 0 else f"must be more than 0, not {v!r}", "> 0")
not_blank = Check(lambda v: None if v.strip() else "must not be empty", "not empty")
power_of_two = Check(lambda v: None if v >= 2 and v & (v - 1) == 0 else f"must be a power of two >= 2, not {v!r}",
                     "a power of two")


def at_least(low: float) -> Check:
    return Check(lambda v: None if v >= low else f"must be {low} or more, not {v!r}", f">= {low}")


def address32(align: int = 4) -> Check:
    """An address a 32-bit core can reach, aligned as its registers are."""
    return Check(lambda v: (f"must be from 0 to 0xffffffff (a 32-bit address), not {v:#x}" if not 0 <= v <= 0xFFFFFFFF
                            else None if v % align == 0 else f"must be a multiple of {align}, not {v:#x}"),
                 f"a 32-bit address, a multiple of {align}")


def multiple_of(n: int) -> Check:
    return Check(lambda v: (f"must be more than 0, not {v!r}" if v <= 0
                            else None if v % n == 0 else f"must be a multiple of {n}, not {v:#x}"),
                 f"> 0, a multiple of {n}")


def one_of(*choices: str) -> Check:
    def problem(value: Any) -> str | None:
        values = value if isinstance(value, tuple) else (value,)
        bad = [v for v in values if v not in choices]
        return None if not bad else f"{', '.join(map(repr, bad))} is not one of {', '.join(c for c in choices if c)}"
    return Check(problem, "one of " + ", ".join(f"`{c}`" for c in choices if c), choices)


# -- parsing ----------------------------------------------------------------------

def fail(path: Path | str, key: str, problem: str, fix: str) -> UsageError:
    return UsageError(f"{path}: `{key}` {problem}", hint=fix)


def keys_of(cls: type) -> dict[str, dataclasses.Field]:
    """The fields of `cls` that are TOML keys (those declared with entry())."""
    return {f.name: f for f in dataclasses.fields(cls) if "rule" in f.metadata}


def parse(cls: type[T], table: object, path: Path | str, where: str = "") -> T:
    """`table` (a TOML table) as a `cls`, or a UsageError naming the key.

    `where` is the table's dotted name ("" for the file's top level). A
    class may define `problems()`, yielding (key, problem, fix) for checks
    across keys."""
    label = f"[{where}]" if where else "the top level"
    if not isinstance(table, dict):
        raise fail(path, where or "(file)", f"must be a table, not {table!r}", f"write [{where}] and its keys")
    fields = keys_of(cls)
    for key in table:
        if key not in fields:
            raise fail(path, _dotted(where, key), f"is not a key of {label}", did_you_mean(key, fields))
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key = _dotted(where, name)
        rule: Rule = f.metadata["rule"]
        if name not in table:
            if f.default is dataclasses.MISSING:
                example = f" = {rule.example}" if rule.example else ""
                raise fail(path, key, "is missing", f"add {name}{example} to [{where}]" if where
                           else f"add {name}{example} at the top of the file")
            continue
        value = _convert(hints[name], table[name], path, key, rule)
        if rule.check is not None:
            problem = rule.check(value)
            if problem:
                raise fail(path, key, problem, _fix(name, rule))
        values[name] = value
    obj = cls(**values)
    for key, problem, fix in getattr(obj, "problems", lambda: ())():
        raise fail(path, _dotted(where, key), problem, fix)
    return obj


def _dotted(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _fix(name: str, rule: Rule) -> str:
    choices = [c for c in rule.check.choices if c] if rule.check else []
    if choices:
        return f"{rule.doc}: use one of {', '.join(choices)}"
    return f"{rule.doc}; e.g. {name} = {rule.example}" if rule.example else rule.doc


def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {_type_name(args[0])}s"
        return f"[{', '.join(_type_name(a) for a in args)}]"
    if origin is dict:
        return f"table of {_type_name(args[1])}"
    if dataclasses.is_dataclass(tp):
        return "table"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(tp, str(tp))


def _convert(tp: Any, value: object, path: Path | str, key: str, rule: Rule) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    name = _type_name(tp)
    article = "an" if name[0] in "aeiou" else "a"
    wrong = fail(path, key, f"must be {article} {name}, not {value!r}", _fix(key.rsplit('.', 1)[-1], rule))
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        for option in options:
            if _matches(option, value):
                return _convert(option, value, path, key, rule)
        if len(options) == 1:
            return _convert(options[0], value, path, key, rule)
        raise wrong
    if dataclasses.is_dataclass(tp):
        return parse(typing.cast(type, tp), value, path, key)
    if origin is tuple:
        if not isinstance(value, list):
            raise wrong
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, path, f"{key}[{i}]", rule) for i, v in enumerate(value))
        if len(value) != len(args):
            raise fail(path, key, f"must have {len(args)} items ({_type_name(tp)}), not {value!r}",
                       _fix(key.rsplit('.', 1)[-1], rule))
        return tuple(_convert(a, v, path, f"{key}[{i}]", rule) for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict:
        if not isinstance(value, dict):
            raise wrong
        return {k: _convert(args[1], v, path, f"{key}.{k}", rule) for k, v in value.items()}
    if not _matches(tp, value):
        raise wrong
    if tp is float:
        number = float(typing.cast(float, value))
        if not math.isfinite(number):
            raise fail(path, key, f"must be a finite number, not {value!r}", _fix(key.rsplit('.', 1)[-1], rule))
        return number
    return value


def _matches(tp: Any, value: object) -> bool:
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if dataclasses.is_dataclass(tp) or typing.get_origin(tp) is dict:
        return isinstance(value, dict)
    if typing.get_origin(tp) is tuple:
        return isinstance(value, list)
    return False


# -- documentation -----------------------------------------------------------------

@dataclass(frozen=True)
class KeyDoc:
    table: str
    key: str
    type: str
    default: str
    unit: str
    range: str
    doc: str


def describe(cls: type, where: str = "") -> Iterator[KeyDoc]:
    """Every key of `cls` and of the tables inside it, for the reference docs."""
    hints = typing.get_type_hints(cls)
    nested = []
    for name, f in keys_of(cls).items():
        rule: Rule = f.metadata["rule"]
        tp = _unwrap(hints[name])
        inner = _table_class(tp)
        if f.default is dataclasses.MISSING:
            default = "required"
        elif f.default is None or f.default == () or f.default == "":
            default = "-"
        elif isinstance(f.default, bool):
            default = str(f.default).lower()
        elif dataclasses.is_dataclass(f.default):
            default = "-"
        else:
            default = repr(f.default).replace("'", '"')
        doc = rule.doc
        if inner is not None and typing.get_origin(tp) is not dict and not _is_list(tp):
            nested.append((inner, _dotted(where, name)))
            continue
        yield KeyDoc(where or "(top level)", name, _type_name(tp), default, rule.unit,
                     rule.check.text if rule.check else "", doc)
        if inner is not None:
            suffix = ".<name>" if typing.get_origin(tp) is dict else "[]"
            nested.append((inner, _dotted(where, name) + suffix))
    for inner, table in nested:
        yield from describe(inner, table)


def _unwrap(tp: Any) -> Any:
    """X for `X | None`."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(options) == 1:
            return options[0]
    return tp


def _is_list(tp: Any) -> bool:
    args = typing.get_args(tp)
    return typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def _table_class(tp: Any) -> type | None:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        found = [_table_class(a) for a in args if a is not type(None)]
        return next((c for c in found if c is not None), None)
    if dataclasses.is_dataclass(tp):
        return typing.cast(type, tp)
    if origin is dict or _is_list(tp):
        return _table_class(args[-1] if origin is dict else args[0])
    return None
