"""Typed configuration: dataclasses with a help line per field, loaded from YAML, then ``--set`` overrides,
then validated before any work starts.

Order of precedence (as in EasyR1): defaults < YAML file < ``--set dotted.key=value``. Validation names the
offending key in one line: unknown keys, wrong types, out-of-range values, missing paths. The resolved
config (every default written out) is saved beside every run.

Field metadata understood here:
- ``help``: one line shown in ``visplay evolve --help-config`` and written as a comment in config.yaml;
- ``min`` / ``max``: inclusive numeric bounds;
- ``choices``: allowed values;
- ``path``: ``"exists"`` when the path must exist at validation time.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from visplay.errors import UserError


def option(default: Any = dataclasses.MISSING, help: str = "", *, default_factory: Any = dataclasses.MISSING,
           **rules: Any) -> Any:
    """A dataclass field with a help line and validation rules."""
    metadata = {"help": help, **rules}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin in (list, tuple):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in get_args(tp) if a is not Ellipsis)}]"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the type hint ``tp``; convert lossless cases (int -> float, list -> tuple)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except UserError:
                continue
        raise UserError(f"config key {key}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in get_args(tp):
            raise UserError(f"config key {key}: must be one of {', '.join(map(repr, get_args(tp)))}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key {key}: expected a list, got {value!r}")
        args = [a for a in get_args(tp) if a is not Ellipsis]
        if origin is tuple and len(args) > 1 and Ellipsis not in get_args(tp):
            if len(value) != len(args):
                raise UserError(f"config key {key}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise UserError(f"config key {key}: expected a mapping, got {value!r}")
        return dict(value)
    if _is_dataclass_type(tp):
        return from_dict(tp, value, prefix=key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"config key {key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise UserError(f"config key {key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-5 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise UserError(f"config key {key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise UserError(f"config key {key}: expected a string, got {value!r}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise UserError(f"config key {key}: expected {_type_name(tp)}, got {value!r}")


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a nested mapping, rejecting unknown keys and wrong types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        where = f"config key {prefix}" if prefix else "config"
        raise UserError(f"{where}: expected a mapping of settings, got {data!r}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else str(unknown[0])
        close = ", ".join(sorted(fields))
        raise UserError(f"unknown config key {key} (known here: {close})")
    kwargs = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if _is_dataclass_type(hints[name]):
            # A nested section starts from its field's default (e.g. a role's GRPO preset) and the given
            # keys override it; a section with required keys and no default is built from the keys alone.
            start: dict = {}
            if f.default_factory is not dataclasses.MISSING:
                try:
                    start = to_dict(f.default_factory())
                except TypeError:
                    start = {}
            given = data.get(name, {})
            if given is not None and not isinstance(given, dict):
                raise UserError(f"config key {key}: expected a mapping of settings, got {given!r}")
            kwargs[name] = from_dict(hints[name], _deep_merge(start, given or {}), key)
        elif name in data:
            kwargs[name] = _coerce(data[name], hints[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UserError(f"config key {key} is required: {f.metadata.get('help', '')}".rstrip(": "))
    try:
        return cls(**kwargs)
    except UserError as exc:
        # Dataclasses that validate themselves name the field but not where it sits in the tree.
        if prefix and not str(exc).startswith(("config key", "unknown config key")):
            raise UserError(f"config key {prefix}.{exc}") from None
        raise


def validate(obj: Any, prefix: str = "") -> None:
    """Check ranges, choices and paths of every field, recursively; raise UserError naming the key."""
    for f in dataclasses.fields(obj):
        key = f"{prefix}.{f.name}" if prefix else f.name
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            validate(value, key)
            continue
        if isinstance(value, (list, tuple)) and any(dataclasses.is_dataclass(v) for v in value):
            for index, item in enumerate(value):  # e.g. eval.benchmarks[0].data must exist too
                if dataclasses.is_dataclass(item):
                    validate(item, f"{key}[{index}]")
            continue
        meta = f.metadata
        values = value if isinstance(value, (list, tuple)) and ("min" in meta or "max" in meta) else [value]
        for v in values:
            if v is None:
                continue
            if "min" in meta and v < meta["min"]:
                raise UserError(f"config key {key}: must be >= {meta['min']}, got {v!r}")
            if "max" in meta and v > meta["max"]:
                raise UserError(f"config key {key}: must be <= {meta['max']}, got {v!r}")
        if "choices" in meta and value is not None and value not in meta["choices"]:
            raise UserError(f"config key {key}: must be one of {', '.join(map(str, meta['choices']))}, got {value!r}")
        if meta.get("path") == "exists" and value not in (None, "") and not Path(str(value)).expanduser().exists():
            raise UserError(f"config key {key}: path {value} does not exist")
    check = getattr(obj, "check", None)
    if callable(check):
        check()


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=3`` -> (["a", "b"], 3); the value is read as YAML, so ``true``, ``[1, 2]``, ``0.5`` work.

    >>> parse_override("reward.band=[0.3, 0.8]")
    (['reward', 'band'], [0.3, 0.8])
    """
    if "=" not in text:
        raise UserError(f"--set expects dotted.key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise UserError(f"--set expects dotted.key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    for text in overrides:
        parts, value = parse_override(text)
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise UserError(f"--set {text}: {part} is not a section")
            node = child
        node[parts[-1]] = value
    return data


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        raise UserError(f"config file {path} is a folder; give a YAML file")
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"config file {path} is not UTF-8 text (a binary file?)") from None
    except OSError as exc:
        raise UserError(f"cannot read config file {path} ({exc.strerror or exc.__class__.__name__})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"config file {path} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of settings")
    return data


def load_config(cls: type, path: str | Path | None = None, overrides: list[str] | None = None,
                base: dict | None = None) -> Any:
    """Defaults < ``base`` < YAML ``path`` < ``overrides``; then validate."""
    data: dict = _deep_merge({}, base or {})
    if path is not None:
        data = _deep_merge(data, read_yaml(path))
    data = apply_overrides(data, list(overrides or []))
    obj = from_dict(cls, data)
    validate(obj)
    return obj


def _deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, list):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def to_yaml(obj: Any, comments: bool = True) -> str:
    """The resolved config as YAML, each field preceded by its help line as a comment."""
    lines: list[str] = []

    def emit(o: Any, indent: int) -> None:
        pad = "  " * indent
        for f in dataclasses.fields(o):
            value = getattr(o, f.name)
            help_text = f.metadata.get("help")
            if comments and help_text:
                lines.append(f"{pad}# {help_text}")
            if dataclasses.is_dataclass(value):
                lines.append(f"{pad}{f.name}:")
                emit(value, indent + 1)
            else:
                dumped = yaml.safe_dump({f.name: to_dict(value)}, default_flow_style=True, sort_keys=False, width=10**6)
                lines.append(pad + dumped.strip().removeprefix("{").removesuffix("}"))

    emit(obj, 0)
    return "\n".join(lines) + "\n"


def describe(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(dotted key, type, default, help) for every field, for ``--help-config``."""
    rows = []
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        if _is_dataclass_type(tp):
            rows.extend(describe(tp, key))
            continue
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        else:
            default = "(required)"
        rows.append((key, _type_name(tp), default, f.metadata.get("help", "")))
    return rows


def describe_values(obj: Any, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(dotted key, type, value, help) for every field of a config INSTANCE: the values it will use, e.g.
    each role's own GRPO settings (where :func:`describe` can only show a field's class default)."""
    rows = []
    hints = get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        key = f"{prefix}.{f.name}" if prefix else f.name
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            rows.extend(describe_values(value, key))
            continue
        shown = yaml.safe_dump(to_dict(value), default_flow_style=True, width=10**6).strip()
        shown = shown.removesuffix("...").strip()
        rows.append((key, _type_name(hints[f.name]), shown, f.metadata.get("help", "")))
    return rows


__all__ = ["option", "from_dict", "validate", "load_config", "apply_overrides", "to_yaml", "to_dict", "describe",
           "describe_values", "parse_override", "read_yaml"]
_ = typing  # keep typing imported for get_type_hints on postponed annotations
