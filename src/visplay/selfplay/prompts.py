"""Prompt templates for the two roles, and the questioner-output parser.

Two template families:
- ``paper``: the long form for real models (Qwen2.5-VL, MiMo-VL, ...).
- ``compact``: short prompts for the tiny models of the toy world (fewer tokens, same output format).

Both roles use chat messages with one image part, so the same messages feed the transformers sampler,
vLLM and TRL's GRPOTrainer.
"""

from __future__ import annotations

# --- compact templates (tiny toy-world models) -------------------------------------------------
# The questioner answers with <type>T</type><question>Q</question><answer>A</answer>.
COMPACT_QUESTIONER_PROMPT = "Ask a hard question about the image."
# The reasoner thinks briefly, then answers inside \boxed{}.
COMPACT_REASONER_PROMPT = "{question}"


def questioner_messages(style: str = "compact") -> list[dict]:
    """Chat messages asking the questioner for one question about the (single) image."""
    text = COMPACT_QUESTIONER_PROMPT if style == "compact" else PAPER_QUESTIONER_PROMPT
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]


def reasoner_messages(question: str, style: str = "compact") -> list[dict]:
    """Chat messages asking the reasoner to answer ``question`` about the (single) image."""
    template = COMPACT_REASONER_PROMPT if style == "compact" else PAPER_REASONER_PROMPT
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": template.format(question=question)}]}]


# --- paper templates (real models); filled in by the signals issue ------------------------------
PAPER_QUESTIONER_PROMPT = COMPACT_QUESTIONER_PROMPT
PAPER_REASONER_PROMPT = "{question}\nPlease reason step by step, and put your final answer within \\boxed{{}}."
