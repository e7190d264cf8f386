"""A config as data: the mapping saved and compared on resume, the commented ``RUN/config.yaml``, and the
``--help-config`` listing, all read off the one schema."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from visplay.config.base import type_name


def to_dict(obj: Any) -> Any:
    """Plain YAML/JSON data: sections as mappings, tuples as lists."""
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def to_yaml(obj: BaseModel, comments: bool = True) -> str:
    """The resolved config as YAML, each key preceded by its help line as a comment."""
    lines: list[str] = []

    def emit(section: BaseModel, indent: int) -> None:
        pad = "  " * indent
        for name, field in type(section).model_fields.items():
            value = getattr(section, name)
            if comments and field.description:
                lines.append(f"{pad}# {field.description}")
            if isinstance(value, BaseModel):
                lines.append(f"{pad}{name}:")
                emit(value, indent + 1)
            else:
                dumped = yaml.safe_dump({name: to_dict(value)}, default_flow_style=True, sort_keys=False, width=10**6)
                lines.append(pad + dumped.strip().removeprefix("{").removesuffix("}"))

    emit(obj, 0)
    return "\n".join(lines) + "\n"


def describe_values(obj: BaseModel, prefix: str = "", block_help: str = "") -> list[tuple[str, str, str, str]]:
    """(dotted key, type, value, help) of every key of a config instance: the values it will use, e.g. each
    role's own GRPO settings. Keys of a shared block (``Sampling``) also carry the block's help line."""
    rows = []
    for name, field in type(obj).model_fields.items():
        key = f"{prefix}.{name}" if prefix else name
        value = getattr(obj, name)
        if isinstance(value, BaseModel):
            rows.extend(describe_values(value, key, field.description if getattr(value, "shared", False) else ""))
            continue
        shown = yaml.safe_dump(to_dict(value), default_flow_style=True, width=10**6).strip()
        shown = shown.removesuffix("...").strip()
        help_text = f"{field.description or ''} [{block_help}]" if block_help else field.description or ""
        rows.append((key, type_name(field.annotation), shown, help_text))
    return rows
