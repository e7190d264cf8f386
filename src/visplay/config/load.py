"""Where a run's settings come from: defaults < preset (paper | tiny) < YAML < ``--set dotted.key=value``.

Each layer is a plain mapping; deprecated keys are moved to their new place layer by layer (so a later
layer's new key still beats an earlier layer's old one), the layers are merged, and the result is
validated once (:func:`visplay.config.base.validate`).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import yaml

from visplay.config.base import validate
from visplay.config.grpo import GRPOSettings
from visplay.config.schema import EvolveConfig
from visplay.errors import UserError

log = logging.getLogger(__name__)

REQUIRED = "(required)"

_SAMPLING_KEYS = ("temperature", "top_p", "top_k", "repetition_penalty", "max_tokens")
# Old flat keys -> where their value goes now. `questioner.answer_*` set the frozen reasoner's votes of BOTH
# the questioner stage and curation, so they fill both blocks.
DEPRECATED: dict[str, tuple[str, ...]] = {
    **{f"questioner.answer_{k}": (f"questioner.vote_sampling.{k}", f"curation.vote_sampling.{k}")
       for k in _SAMPLING_KEYS},
    **{f"curation.question_{k}": (f"curation.question_sampling.{k}",) for k in _SAMPLING_KEYS},
}


def tiny_preset() -> dict:
    """Values that differ from the paper for the toy world's tiny models on 2 CPU cores."""
    return {
        "model": {"prompt_style": "compact"},
        "sampler": {"max_batch_tokens": 16384},
        "questioner": {"grpo": GRPOSettings.tiny("questioner").to_dict(), "votes": 10,
                       "vote_sampling": {"max_tokens": 64}},
        "curation": {"images": 64, "samples_per_image": 4, "votes": 9, "question_sampling": {"max_tokens": 48},
                     "vote_sampling": {"max_tokens": 64}, "min_kept": 8},
        "reasoner": {"grpo": GRPOSettings.tiny("reasoner").to_dict()},
        "eval": {"max_new_tokens": 64},
    }


# --- layers -------------------------------------------------------------------------------------------
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


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=3`` -> (["a", "b"], 3); the value is read as YAML, so ``true``, ``[1, 2]``, ``0.5`` work.

    >>> parse_override("curation.band=[0.3, 0.8]")
    (['curation', 'band'], [0.3, 0.8])
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


def _set(data: dict, parts: list[str], value: Any, text: str) -> None:
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise UserError(f"--set {text}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``data`` with each ``--set`` applied in order (a deprecated key goes to its new place)."""
    for text in overrides:
        parts, value = parse_override(text)
        targets = DEPRECATED.get(".".join(parts))
        if targets:
            _warn(".".join(parts), targets)
        for target in targets or (".".join(parts),):
            _set(data, target.split("."), value, text)
    return data


def _warn(old: str, targets: tuple[str, ...]) -> None:
    log.warning("config key %s is deprecated; use %s", old, " and ".join(targets))


def rename_deprecated(data: dict, warn: bool = True) -> dict:
    """``data`` with every deprecated key moved to its new place(s); a new key given in the same mapping
    wins over the old one.

    >>> rename_deprecated({"curation": {"question_top_p": 0.95, "votes": 9}}, warn=False)
    {'curation': {'votes': 9, 'question_sampling': {'top_p': 0.95}}}
    """
    out = copy.deepcopy(data)
    for old, targets in DEPRECATED.items():
        section, key = old.split(".")
        holder = out.get(section)
        if not isinstance(holder, dict) or key not in holder:
            continue
        value = holder.pop(key)
        if warn:
            _warn(old, targets)
        for target in targets:
            *path, leaf = target.split(".")
            node = out
            for part in path:
                if node.get(part) is None:
                    node[part] = {}
                if not isinstance(node[part], dict):
                    break  # not a section: validation names the key
                node = node[part]
            else:
                node.setdefault(leaf, value)
    return out


def deep_merge(a: dict, b: dict) -> dict:
    """``b`` over ``a``, section by section (neither is changed).

    >>> deep_merge({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}})
    {'a': {'x': 1, 'y': 3}}
    """
    out = dict(a)
    for k, v in b.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _evolve_data(path, overrides, base: dict | None) -> dict:
    """The settings given: preset values < ``base`` < YAML < ``--set`` (defaults are filled in by validation)."""
    data = deep_merge(rename_deprecated(base or {}), rename_deprecated(read_yaml(path)) if path else {})
    data = rename_deprecated(apply_overrides(data, list(overrides or [])))  # also a whole section given by --set
    preset = data.get("preset", "paper")
    if preset not in ("paper", "tiny"):
        raise UserError(f"config key preset: must be 'paper' or 'tiny', got {preset!r}")
    start = tiny_preset() if preset == "tiny" else {}
    return deep_merge(start, data)


def load_evolve_config(path=None, overrides=None, base: dict | None = None) -> EvolveConfig:
    """Defaults < preset < ``base`` < YAML < ``--set``; validated (UserError naming the key otherwise)."""
    return validate(EvolveConfig, _evolve_data(path, overrides, base))


def complete_stored_config(stored: dict) -> EvolveConfig:
    """A run's stored config.yaml as the run used it: every key added since it was written filled in with
    its default (its preset's, else the schema's). Built like :func:`preview_evolve_config`, without this
    machine's checks (the stored paths may have moved); UserError when it no longer validates."""
    return validate(EvolveConfig, _evolve_data(None, None, stored), preview=True)


def preview_evolve_config(path=None, overrides=None) -> EvolveConfig:
    """The values a run with this YAML and these overrides would use (``--help-config``): built like
    :func:`load_evolve_config` but without this machine's checks (paths, trackers), with keys still to be
    given shown as ``(required)``."""
    placeholders = {"model": {"path": REQUIRED}, "data": {"images": REQUIRED}}
    return validate(EvolveConfig, deep_merge(placeholders, _evolve_data(path, overrides, None)), preview=True)
