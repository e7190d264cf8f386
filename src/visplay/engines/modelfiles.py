"""Is a model folder complete? Cheap checks of its files, run before any work starts.

A folder missing its tokenizer, or holding a truncated ``model.safetensors``, otherwise loads halfway and
fails deep inside transformers or TRL (a SafetensorError, or "Mismatch in image token count" minutes into
a run). Here every file a load needs is checked first, reading headers only (``safe_open`` reads the
safetensors header and checks that the file covers every tensor, without reading the tensors).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from visplay.errors import UserError

# Any one of these lets AutoTokenizer build a tokenizer (fast JSON, sentencepiece, or BPE / WordPiece vocab).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "spiece.model", "vocab.json", "vocab.txt", "tekken.json")
# Small JSON files that must parse when present (tokenizer.json is read in full by the tokenizer anyway).
JSON_FILES = ("generation_config.json", "tokenizer_config.json", "preprocessor_config.json",
              "processor_config.json", "special_tokens_map.json", "tokenizer.json", "chat_template.json")
IMAGE_PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path} is not readable JSON ({exc.__class__.__name__}); the model folder is damaged") from None


def check_safetensors(path: Path) -> None:
    """Raise UserError unless ``path`` has a valid safetensors header and covers every tensor it lists.

    Reads the header only: a file cut by an interrupted copy or download fails here in milliseconds.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            handle.keys()
    except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError, ... all mean "not a usable file"
        detail = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise UserError(f"{path} is not a complete safetensors file ({detail}); copy or download it again") from None


def _check_weights(path: Path) -> None:
    index_files = sorted(path.glob("*.safetensors.index.json")) + sorted(path.glob("*.bin.index.json"))
    for index_file in index_files:
        index = _read_json(index_file)
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise UserError(f"{index_file} has no weight_map; the model folder is damaged")
        for shard in set(map(str, weight_map.values())):
            if not (path / shard).is_file():
                raise UserError(f"{path} is missing the weight shard {shard} listed in {index_file.name}")
    safetensors = sorted(path.glob("*.safetensors"))
    bins = sorted(p for p in path.glob("*.bin") if p.is_file())
    if not safetensors and not bins:
        raise UserError(f"{path} has a config but no weights (*.safetensors or *.bin)")
    for file in safetensors:
        check_safetensors(file)
    if not safetensors:
        for file in bins:
            if _cut_bin(file):
                raise UserError(f"{file} is empty or cut short; copy or download it again")


def _cut_bin(path: Path) -> bool:
    """A ``.bin`` that is empty, or a zip archive (what torch.save writes) without its end directory."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    return not head or (head == b"PK\x03\x04" and not zipfile.is_zipfile(path))


def _check_model_type(path: Path, config: dict) -> None:
    if config.get("auto_map"):
        return  # custom code decides (trust_remote_code); transformers' tables cannot tell
    try:
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
        from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
    except ImportError:  # pragma: no cover - transformers moved its tables; the load itself will tell
        return
    model_type = config["model_type"]
    if model_type not in CONFIG_MAPPING_NAMES:
        raise UserError(f"{path}: transformers does not know model_type {model_type!r} (a newer transformers, "
                        "or a model that needs trust_remote_code?)")
    if model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise UserError(f"{path}: model_type {model_type!r} is not a vision-language model transformers can load "
                        "(AutoModelForImageTextToText)")


def check_model_files(path: Path, config: dict) -> None:
    """Raise UserError naming the first missing or damaged file a load of ``path`` would need."""
    _check_model_type(path, config)
    for name in JSON_FILES:
        if (path / name).is_file():
            _read_json(path / name)
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise UserError(f"{path} has no tokenizer files (one of {', '.join(TOKENIZER_FILES)}); "
                        "copy them from the model's original folder")
    if not any((path / name).is_file() for name in IMAGE_PROCESSOR_FILES):
        raise UserError(f"{path} has no image processor config ({' or '.join(IMAGE_PROCESSOR_FILES)}); "
                        "copy it from the model's original folder")
    _check_weights(path)
