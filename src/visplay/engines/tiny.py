"""A tiny random VLM built fully offline: tokenizer, image processor and model.

The result is a plain Hugging Face checkpoint folder (config.json, model.safetensors, tokenizer files,
preprocessor_config.json, chat_template.jinja) that ``transformers.AutoModelForImageTextToText`` and
:func:`visplay.engines.loading.load_vlm` load directly. It is the model the tests use and the starting
point of the toy world's base model.

Pieces:
- a byte-level BPE tokenizer trained here on a small built-in corpus (chat and math words, the toy world's
  vocabulary, digits) plus any text the caller adds, with the architecture's chat and vision special tokens;
- a Qwen-VL chat template that places ``<|vision_start|><|image_pad|><|vision_end|>`` for each image part
  (no default system prompt: every token counts at this size);
- an image processor whose pixel bounds map a 112x112 image to 8x8 patches = 16 merged tokens, normalised
  so the toy world's background (245, 245, 245) becomes exactly 0 (with CLIP's mean/std the background is
  a large constant input that swamps the vision tower; see docs/toy_base_model.md, "A first probe");
- a model config small enough to train on 2 CPU cores (about 1.4 M parameters for the default size).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

from visplay.errors import UserError
from visplay.io import atomic_dir

ARCHITECTURES = ("qwen2_5_vl", "qwen2_vl", "qwen3_vl")

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "<|im_start|>{{ message['role'] }}{{ '\\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' or 'image' in part or 'image_url' in part -%}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif part['type'] == 'video' or 'video' in part -%}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{%- elif 'text' in part -%}{{ part['text'] }}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "<|im_end|>{{ '\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|im_start|>assistant{{ '\\n' }}{%- endif -%}"
)

# Background of the toy world, mapped to exactly 0 by the image normalisation.
TOY_BACKGROUND = 245
TOY_IMAGE_MEAN = [TOY_BACKGROUND / 255.0] * 3
TOY_IMAGE_STD = [0.3] * 3

_WORDS = """
a an the is are there how many what which of in on at to and or than more fewer less same number total
object objects image picture question answer type numerical multiple choice regression open yes no
color colour shape size small large big tiny left right above below top bottom middle center
red green blue yellow purple orange black white gray grey pink brown cyan
circle circles square squares triangle triangles star rectangle shapes
count counting exists exist does do have has with without each every all any both only one two three four
five six seven eight nine ten zero first second third total sum difference minus plus times
let me look think step by please reason final put within boxed so therefore hard ask about
""".split()

_TEMPLATES = [
    "<type>numerical</type><question>How many {c} {s} are there?</question><answer>{n}</answer>",
    "<type>multiple choice</type><question>Is there a {z} {c} {s1}?</question><answer>{yn}</answer>",
    "<type>open</type><question>What color is the {z} {s1}?</question><answer>{c}</answer>",
    "<think>I count {n} {c} {s}.</think> \\boxed{{{n}}}",
    "<think>The {s1} is {c}.</think> \\boxed{{{c}}}",
    "Question: {q} Answer: \\boxed{{{yn}}}",
    "The answer is $\\frac{{{n}}}{{{m}}}$ and \\boxed{{\\frac{{{n}}}{{{m}}}}} = {n}.{m} or {n}{m}%.",
    "Options: (A) {n} (B) {m} (C) {c} (D) {s}. Answer: B",
]


def _corpus(extra_text: list[str] | tuple[str, ...] = ()) -> list[str]:
    colors = "red green blue yellow purple orange".split()
    shapes = "circles squares triangles objects".split()
    lines = [" ".join(_WORDS), "0 1 2 3 4 5 6 7 8 9 10 11 12 100 3.14 -1 1/2 x^2 \\frac \\sqrt \\pi ( ) [ ] { } + - * = < > ."]
    for i, (c, s, z) in enumerate(itertools.product(colors, shapes, ["small", "large"])):
        for t in _TEMPLATES:
            lines.append(t.format(c=c, s=s, s1=s.rstrip("s"), z=z, n=i % 7, m=(i * 3) % 10 + 1,
                                  yn="yes" if i % 2 else "no", q="Is it red?"))
    lines.extend(extra_text)
    return lines


def train_tokenizer(vocab_size: int = 1024, extra_text: list[str] | tuple[str, ...] = ()):
    """Train a byte-level BPE tokenizer here, offline, and wrap it as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(extra_text), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        additional_special_tokens=SPECIAL_TOKENS[1:],
        padding_side="left",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


@dataclass(frozen=True)
class TinySize:
    """Model widths. ``S`` trains at 0.3-0.4 s per step (batch 32) on 2 CPU cores (docs/toy_base_model.md)."""

    text_hidden: int = 128
    text_layers: int = 4
    text_ffn: int = 512
    text_heads: int = 4
    text_kv_heads: int = 2
    vision_hidden: int = 64
    vision_layers: int = 2
    vision_heads: int = 2
    vision_ffn: int = 256


SIZES = {"S": TinySize(), "XS": TinySize(text_hidden=64, text_layers=2, text_ffn=256, vision_hidden=32, vision_layers=1, vision_ffn=128)}


def _mrope_section(head_dim: int) -> list[int]:
    # Qwen's default [16, 24, 24] for head_dim 128, scaled; must sum to head_dim / 2.
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def tiny_config(arch: str, tokenizer, size: TinySize):
    """A transformers config for ``arch`` at ``size``, with the tokenizer's special-token ids."""
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = size.text_hidden // size.text_heads
    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=size.text_hidden,
        intermediate_size=size.text_ffn,
        num_hidden_layers=size.text_layers,
        num_attention_heads=size.text_heads,
        num_key_value_heads=size.text_kv_heads,
        max_position_embeddings=2048,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": _mrope_section(head_dim)},
        # The tokenizer declares no BOS (as Qwen's): the config must say so too, or every trainer built on
        # the model warns that the tokenizer "has new PAD/BOS/EOS tokens" and rewrites the config.
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=True,
    )
    common = dict(
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    if arch == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        vision = dict(
            depth=size.vision_layers, hidden_size=size.vision_hidden, intermediate_size=size.vision_ffn,
            num_heads=size.vision_heads, out_hidden_size=size.text_hidden, patch_size=14, spatial_merge_size=2,
            temporal_patch_size=2, window_size=112, fullatt_block_indexes=list(range(size.vision_layers)),
        )
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **common)
    if arch == "qwen2_vl":
        from transformers import Qwen2VLConfig

        vision = dict(
            depth=size.vision_layers, embed_dim=size.vision_hidden, hidden_size=size.text_hidden,
            num_heads=size.vision_heads, mlp_ratio=max(1, size.vision_ffn // size.vision_hidden), patch_size=14,
            spatial_merge_size=2, temporal_patch_size=2,
        )
        return Qwen2VLConfig(text_config=text, vision_config=vision, **common)
    if arch == "qwen3_vl":
        from transformers import Qwen3VLConfig

        text = dict(text, head_dim=head_dim)
        text["rope_parameters"] = dict(text["rope_parameters"], mrope_interleaved=True)
        vision = dict(
            depth=size.vision_layers, hidden_size=size.vision_hidden, intermediate_size=size.vision_ffn,
            num_heads=size.vision_heads, out_hidden_size=size.text_hidden, patch_size=16, spatial_merge_size=2,
            temporal_patch_size=2, num_position_embeddings=64, deepstack_visual_indexes=[],
        )
        return Qwen3VLConfig(text_config=text, vision_config=vision, **common)
    raise UserError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")


def tiny_image_processor(arch: str, image_size: int = 112):
    """Image processor whose pixel bounds keep a ``image_size``-px square image at its size."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    patch = 16 if arch == "qwen3_vl" else 14
    side = max(2 * patch, (image_size // (2 * patch)) * 2 * patch)
    return Qwen2VLImageProcessorPil(
        size={"shortest_edge": (2 * patch) ** 2, "longest_edge": side * side},
        patch_size=patch,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=TOY_IMAGE_MEAN,
        image_std=TOY_IMAGE_STD,
    )


def build_tiny_model(
    out_dir: str | Path,
    arch: str = "qwen2_5_vl",
    size: str | TinySize = "S",
    seed: int = 0,
    vocab_size: int = 1024,
    extra_text: list[str] | tuple[str, ...] = (),
    image_size: int = 112,
) -> Path:
    """Write a tiny random VLM checkpoint of ``arch`` to ``out_dir`` (replaced atomically) and return it.

    ``extra_text`` adds lines to the tokenizer's training corpus (e.g. the toy world's questions), so
    the vocabulary covers the text the model will see.
    """
    import torch
    from transformers import AutoModelForImageTextToText

    from visplay.engines.loading import save_vlm
    from visplay.engines.processors import IMAGE_ONLY_PROCESSORS

    if arch not in ARCHITECTURES:
        raise UserError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    tiny_size = SIZES[size] if isinstance(size, str) else size
    tokenizer = train_tokenizer(vocab_size, extra_text)
    config = tiny_config(arch, tokenizer, tiny_size)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.bos_token_id = config.text_config.bos_token_id
    _, processor_cls = IMAGE_ONLY_PROCESSORS[arch]
    processor = processor_cls(image_processor=tiny_image_processor(arch, image_size), tokenizer=tokenizer,
                              chat_template=CHAT_TEMPLATE)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        save_vlm(model, processor, tmp)
        (tmp / "visplay_tiny.json").write_text(json.dumps(
            {"arch": arch, "size": tiny_size.__dict__, "seed": seed, "vocab_size": vocab_size,
             "image_size": image_size}, indent=2) + "\n")
    return out_dir
