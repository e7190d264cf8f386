"""What every config section shares: pydantic settings, value types, and one-line errors naming the key.

A section is a pydantic model with a ``description`` (the help line) per field. Validation runs once, when
the whole tree is built, and its first problem becomes a :class:`~visplay.errors.UserError` of one line:
``config key a.b.c: <what is wrong>`` (or ``unknown config key a.b.x (known here: ...)``).
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from visplay.errors import UserError


def _number(value: Any) -> Any:
    # pydantic's float takes True as 1.0; a yes/no where a number belongs is a mistake. Strings are left
    # to pydantic, which parses them: YAML 1.1 reads 1e-5 (no dot) as the string "1e-5".
    if isinstance(value, bool):
        raise PydanticCustomError("float_type", "expected a number")
    return value


def _existing_path(value: str | None, info: ValidationInfo) -> str | None:
    if value in (None, "") or (info.context or {}).get("preview"):
        return value
    if not Path(str(value)).expanduser().exists():
        raise PydanticCustomError("path_missing", f"path {value} does not exist")
    return value


Int = StrictInt  # no 3.0, "3" or true for an integer
Bool = StrictBool  # true / false only
Float = Annotated[float, BeforeValidator(_number)]
ExistingPath = Annotated[str, AfterValidator(_existing_path)]  # checked unless previewing (--help-config)


def fail(key: str, message: str) -> PydanticCustomError:
    """A cross-field error about ``key`` (a field of the validated section, dotted for deeper ones)."""
    return PydanticCustomError("visplay", message, {"key": key})


class _UserErrors(type(BaseModel)):
    """``Section(...)`` called directly (``GRPOSettings(top_p=2)``) raises the one-line UserError too.

    (Not an ``__init__`` override: pydantic would then build nested sections through it, losing the key
    path and the validation context.)"""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as exc:
            raise UserError(error_line(exc, cls)) from None


class Section(BaseModel, metaclass=_UserErrors):
    """A config section: unknown keys refused; numbers written as strings by YAML 1.1 accepted; a nested
    section that is missing or null starts from its field's default (e.g. each role's own GRPO values)
    and the given keys override it."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _sections_start_from_their_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, field in cls.model_fields.items():
            if _section_type(field.annotation) is None:
                continue
            given = {} if out.get(name) is None else out[name]
            if isinstance(given, dict):
                start = field.default_factory().model_dump() if field.default_factory is not None else {}
                out[name] = {**start, **given}
        return out


def _section_type(annotation: Any) -> type[Section] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _item_section(annotation: Any) -> type[Section] | None:
    """The section type of a field, or of a list field's items."""
    if get_origin(annotation) is list:
        return _section_type(get_args(annotation)[0])
    return _section_type(annotation)


def _walk(loc: tuple, root: type[BaseModel]) -> tuple[str, type[BaseModel], Any]:
    """Dotted key of an error location, skipping pydantic's union-member tags; also the section that holds
    the last key and that key's field (None for an unknown key)."""
    key, owner, field = "", root, None
    current: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        elif current is not None:
            owner = current
            field = current.model_fields.get(part)  # None: an unknown key, which names itself
            key = f"{key}.{part}" if key else str(part)
            current = _item_section(field.annotation) if field is not None else None
        # else: a union member's tag ("str", "int", ...) inside a plain field: not part of the key
    return key, owner, field


def type_name(tp: Any) -> str:
    """How ``--help-config`` shows a key's type.

    >>> type_name(Int | None), type_name(Literal["a", "b"]), type_name(tuple[Float, Float])
    ('int | None', "'a' | 'b'", 'tuple[float, float]')
    """
    origin = get_origin(tp)
    if origin is Annotated:
        return type_name(get_args(tp)[0])
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in get_args(tp))
    if origin in (list, tuple):
        return f"{origin.__name__}[{', '.join(type_name(a) for a in get_args(tp) if a is not Ellipsis)}]"
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


_WHAT = {
    "int_type": "expected an integer", "int_parsing": "expected an integer", "int_from_float": "expected an integer",
    "bool_type": "expected true or false", "bool_parsing": "expected true or false",
    "float_type": "expected a number", "float_parsing": "expected a number", "finite_number": "must be a finite number",
    "string_type": "expected a string", "list_type": "expected a list", "tuple_type": "expected a list",
    "model_type": "expected a mapping of settings", "model_attributes_type": "expected a mapping of settings",
    "dict_type": "expected a mapping of settings",
}
_BOUNDS = {"greater_than_equal": ("ge", ">="), "less_than_equal": ("le", "<="), "greater_than": ("gt", ">"),
           "less_than": ("lt", "<")}


def error_line(exc: ValidationError, root: type[BaseModel]) -> str:
    """The first problem of a validation error as one line naming its dotted key."""
    errors = exc.errors()
    first = errors[0]
    if first["type"] == "missing":  # a misspelt key explains a missing one better than "required" does
        first = next((e for e in errors if e["type"] == "extra_forbidden"), first)
    loc = tuple(first["loc"])
    ctx = first.get("ctx") or {}
    kind = first["type"]
    if kind == "visplay" and ctx.get("key"):
        loc = loc + tuple(str(ctx["key"]).split("."))
    key, owner, field = _walk(loc, root)
    got = first.get("input")
    if kind == "extra_forbidden":
        return f"unknown config key {key} (known here: {', '.join(sorted(owner.model_fields))})"
    if kind == "missing":
        if loc and isinstance(loc[-1], int):  # a tuple short of items
            size = len(get_args(field.annotation)) if field is not None else "more"
            return f"config key {key.rsplit('[', 1)[0]}: expected {size} values, got {loc[-1]}"
        help_text = field.description if field is not None else ""
        return f"config key {key} is required: {help_text}".rstrip(": ")
    where = f"config key {key}" if key else "config"
    same_key = [e for e in errors if _walk(tuple(e["loc"]), root)[0] == key]
    if len(same_key) > 1 and field is not None and not isinstance(loc[-1], int):  # every member of a union refused
        return f"{where}: expected {type_name(field.annotation)}, got {got!r}"
    if kind == "literal_error" and field is not None:
        choices = get_args(_unwrap(field.annotation))
        return f"{where}: must be one of {', '.join(map(repr, choices))}, got {got!r}"
    if kind in _BOUNDS:
        name, sign = _BOUNDS[kind]
        return f"{where}: must be {sign} {ctx[name]}, got {got!r}"
    if kind in ("too_short", "too_long"):
        return f"{where}: expected {ctx.get('min_length', ctx.get('max_length'))} values, got {ctx.get('actual_length')}"
    if kind in _WHAT:
        return f"{where}: {_WHAT[kind]}, got {got!r}"
    return f"{where}: {first['msg']}"


def _unwrap(tp: Any) -> Any:
    """``Literal[...]`` out of ``Literal[...] | None`` / ``Annotated[...]``."""
    if get_origin(tp) is Annotated:
        return _unwrap(get_args(tp)[0])
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else tp
    return tp


def validate(cls: type[Section], data: dict, preview: bool = False) -> Section:
    """Build ``cls`` from a nested mapping in one validation pass; a problem is one UserError line.

    ``preview`` (``--help-config``) skips what depends on this machine: path existence, installed trackers.
    """
    try:
        return cls.model_validate(data, context={"preview": preview})
    except ValidationError as exc:
        raise UserError(error_line(exc, cls)) from None
