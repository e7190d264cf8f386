"""Load and save Hugging Face VLM checkpoints offline, with a processor that really handles images.

``load_vlm`` accepts any local transformers VLM folder (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, Idefics3/SmolVLM,
LLaVA-style); ``save_vlm`` writes a plain checkpoint that transformers and vLLM load directly.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from visplay.engines.modelfiles import check_model_files
from visplay.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class LoadedVLM:
    """A model, its processor and where it came from."""

    model: Any
    processor: Any
    path: Path

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str | torch.device) -> torch.dtype:
    # bf16 on GPU as the paper; float32 on CPU, where bf16 matmuls are slow and lossy for tiny models.
    return torch.bfloat16 if str(device).startswith("cuda") else torch.float32


def read_model_config(path: str | Path) -> dict:
    """The folder's config.json, with clear one-line errors for every way it can be wrong."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"model folder {path} does not exist")
    if not path.is_dir():
        raise UserError(f"model path {path} is a file; expected a Hugging Face model folder")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise UserError(f"{path} is not a model folder (no config.json)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{config_file} is not readable JSON ({exc.__class__.__name__})") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise UserError(f"{config_file} has no model_type; not a transformers model")
    if not isinstance(config.get("vision_config"), dict):
        raise UserError(
            f"{path} holds a text-only model (model_type {config['model_type']!r}); VisPlay needs a vision-language model"
        )
    check_model_files(path, config)
    return config


def _torchvision_available() -> bool:
    return importlib.util.find_spec("torchvision") is not None


def load_processor(path: str | Path, model_type: str | None = None, trust_remote_code: bool = False):
    """Build the processor explicitly so that it is never silently just a tokenizer.

    Works without torchvision for the Qwen-VL family (transformers' own Qwen-VL image processors and
    ``AutoProcessor`` need it): ``load_processor("runs/demo/iter_01/reasoner")``. ``model_type`` defaults
    to the folder's config.json.
    """
    from transformers import AutoProcessor, AutoTokenizer
    from transformers.processing_utils import ProcessorMixin

    from visplay.engines.processors import IMAGE_ONLY_PROCESSORS

    path = Path(path)
    if model_type is None:
        model_type = read_model_config(path)["model_type"]
    if model_type in IMAGE_ONLY_PROCESSORS and not _torchvision_available():
        _, cls = IMAGE_ONLY_PROCESSORS[model_type]
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        image_processor = _pil_image_processor(path)
        chat_template = _read_chat_template(path) or tokenizer.chat_template
        return cls(image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template)
    processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
    if not isinstance(processor, ProcessorMixin) or getattr(processor, "image_processor", None) is None:
        raise UserError(
            f"could not build an image processor for {path} (AutoProcessor returned {type(processor).__name__}); "
            "is preprocessor_config.json missing?"
        )
    return processor


def _pil_image_processor(path: Path):
    """Qwen-VL image processor without torchvision (AutoImageProcessor insists on it in transformers 5)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    if (path / "preprocessor_config.json").is_file():
        return Qwen2VLImageProcessorPil.from_pretrained(path)
    processor_config = path / "processor_config.json"
    if processor_config.is_file():
        data = json.loads(processor_config.read_text()).get("image_processor")
        if data:
            data = {k: v for k, v in data.items() if k not in ("image_processor_type", "processor_class")}
            return Qwen2VLImageProcessorPil(**data)
    raise UserError(f"{path} has no image processor config (preprocessor_config.json or processor_config.json)")


def _read_chat_template(path: Path) -> str | None:
    jinja = path / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    js = path / "chat_template.json"
    if js.is_file():
        return json.loads(js.read_text()).get("chat_template")
    return None


def load_vlm(
    path: str | Path,
    device: str | None = None,
    dtype: torch.dtype | str | None = None,
    trust_remote_code: bool = False,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> LoadedVLM:
    """Load a local VLM folder and its processor; offline, CPU or GPU (bf16 on GPU by default).

    ``min_pixels`` / ``max_pixels`` clamp the image area the processor feeds the model (see
    :func:`set_pixel_bounds`); None keeps the processor's own bounds.
    """
    from transformers import AutoModelForImageTextToText

    path = Path(path)
    config = read_model_config(path)
    device = device or default_device()
    if isinstance(dtype, str):
        dtype = {"auto": None, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    dtype = dtype or default_dtype(device)
    try:
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype, trust_remote_code=trust_remote_code)
        processor = load_processor(path, config["model_type"], trust_remote_code)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - damage read_model_config cannot see (a wrong shape, a bad vocab)
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise UserError(f"cannot load the model in {path} ({exc.__class__.__name__}: {first[:300]})") from None
    model.to(device)
    model.eval()
    set_pixel_bounds(processor, min_pixels, max_pixels)
    tokenizer = processor.tokenizer
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # The checkpoint's generation_config.json (chat defaults such as repetition_penalty 1.05) must never
    # reach a sample: generation fills unset parameters from model.generation_config, so it is replaced
    # by one holding only the special tokens (samplers and GRPO pass every decoding knob explicitly).
    from transformers import GenerationConfig

    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id)
    return LoadedVLM(model=model, processor=processor, path=path)


SPECIAL_TOKEN_IDS = ("bos_token_id", "eos_token_id", "pad_token_id")


def expose_special_token_ids(config) -> None:
    """Give a composite VLM config its text model's special-token ids at the top level too.

    transformers 5 keeps bos/eos/pad ids only in ``text_config`` of VLM configs (a top-level id in
    config.json is folded into it on load), while its Trainer compares the tokenizer with the TOP-level
    ids; without this every GRPO stage would report "new PAD/BOS/EOS tokens" and rewrite the configs even
    when checkpoint and tokenizer agree. Ids already at the top level are left alone.
    """
    text = getattr(config, "text_config", None)
    if text is None:
        return
    for name in SPECIAL_TOKEN_IDS:
        if getattr(config, name, None) is None and getattr(text, name, None) is not None:
            setattr(config, name, getattr(text, name))


def set_pixel_bounds(processor, min_pixels: int | None = None, max_pixels: int | None = None) -> None:
    """Clamp the image area of Qwen-VL-style processors (``size.shortest_edge`` / ``size.longest_edge`` are
    pixel counts there); the authors clamp to 262,144-4,194,304 pixels. No-op when both are None."""
    if min_pixels is None and max_pixels is None:
        return
    image_processor = getattr(processor, "image_processor", None)
    size = getattr(image_processor, "size", None)
    get = size.get if isinstance(size, dict) else (lambda key: getattr(size, key, None))
    if size is None or get("shortest_edge") is None or get("longest_edge") is None:
        raise UserError(f"model.min_pixels / model.max_pixels: the image processor "
                        f"{type(image_processor).__name__} has no pixel-count bounds to set")
    low = min_pixels if min_pixels is not None else get("shortest_edge")
    high = max_pixels if max_pixels is not None else get("longest_edge")
    if low > high:
        raise UserError(f"model.min_pixels {low} is above model.max_pixels {high}")
    bounds = {"shortest_edge": int(low), "longest_edge": int(high)}
    image_processor.size = dict(size, **bounds) if isinstance(size, dict) else type(size)(**bounds)


def free_memory() -> None:
    """Release a dropped model's memory now (before the next model loads), on CPU and GPU."""
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def save_vlm(model, processor, out_dir: str | Path) -> Path:
    """Save a plain HF checkpoint: weights, config, generation config, tokenizer, image processor, template.

    Image-only processor classes are written under their upstream names (e.g. ``Qwen2_5_VLProcessor``) so
    that ``AutoProcessor`` and vLLM on machines with torchvision build the full processor.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    # Also the classic per-component file: older transformers releases and vLLM read preprocessor_config.json.
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is not None and not (out_dir / "preprocessor_config.json").exists():
        image_processor.save_pretrained(out_dir)
    upstream = type(processor).__name__.removeprefix("ImageOnly")
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        f = out_dir / name
        if f.is_file():
            data = json.loads(f.read_text())
            if str(data.get("processor_class", "")).startswith("ImageOnly"):
                data["processor_class"] = upstream
                f.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    chat_template = getattr(processor, "chat_template", None)
    if chat_template and not (out_dir / "chat_template.jinja").exists():
        (out_dir / "chat_template.jinja").write_text(chat_template)
    return out_dir


def carry_configs_and_markers(model_dir: Path, out_dir: Path, skip: tuple[str, ...] = ("visplay_grpo.json",)) -> None:
    """Copy the starting checkpoint's ``config.json``, ``generation_config.json`` and VisPlay markers
    (``visplay_*.json`` except ``skip``, the training stage's own record) into a trained checkpoint.

    Training changes weights only, but it flips config fields (use_cache, token ids aligned to the
    tokenizer, TRL's eos list), so the configs and markers go back as they were."""
    import shutil

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    for name in ("config.json", "generation_config.json"):
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, out_dir / name)
    for marker in model_dir.glob("visplay_*.json"):
        if marker.name not in skip:
            shutil.copy2(marker, out_dir / marker.name)

