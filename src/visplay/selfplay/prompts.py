"""Prompt templates for the two roles, and the questioner-output parser.

Two template families:
- ``paper``: the long form for real models (Qwen2.5-VL, MiMo-VL, ...): the authors' questioner template,
  and the reasoner instruction of the authors' evaluation / curation scripts.
- ``compact``: short prompts for the tiny models of the toy world (fewer tokens, same output format).

Both roles use chat messages with one image part, so the same messages feed the transformers sampler,
vLLM and TRL's GRPOTrainer.

The questioner answers ``<type>T</type><question>Q</question><answer>A</answer>``.
:func:`parse_question` reads it the way the authors' reward code does: whitespace around ``<``, ``>``
and ``/`` is removed from the whole reply first (their fix for Qwen2.5-VL-32B's ``< question >``).

Where this departs from the authors' code (the one place that says so):

- The paper's template asks only for ``<question>``; the authors' asks for type, question and answer. We
  use the authors' wording, and by default a reply parses as soon as it has a non-empty question (type
  and answer may be missing). ``strict=True`` reproduces the authors' reward-time parser instead: the
  first ``<type>..<question>..<answer>`` triple, with non-empty question and answer.
- By default the *last* tag of each kind is taken (as in the authors' curation script), so a template
  echoed before the real answer does not win.
- The authors' template text is kept word for word; only its source indentation and a stray line break
  inside "Question Generator" are removed.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = [
    "AUTHORS_VOTER_PROMPT",
    "AUTHORS_VOTER_SYSTEM_PROMPT",
    "COMPACT_QUESTIONER_PROMPT",
    "COMPACT_REASONER_PROMPT",
    "PAPER_QUESTIONER_PROMPT",
    "PAPER_REASONER_PROMPT",
    "ParsedQuestion",
    "normalise_tags",
    "parse_question",
    "questioner_messages",
    "reasoner_messages",
    "voter_messages",
]

# --- compact templates (tiny toy-world models) -------------------------------------------------
# The questioner answers with <type>T</type><question>Q</question><answer>A</answer>.
COMPACT_QUESTIONER_PROMPT = "Ask a hard question about the image."
# The reasoner thinks briefly, then answers inside \boxed{}.
COMPACT_REASONER_PROMPT = "{question}"

# --- paper templates (real models) --------------------------------------------------------------
# The authors' questioner template (VisPlay ``verl/utils/dataset.py`` / ``question_generate.py``).
PAPER_QUESTIONER_PROMPT = """You are an intelligent Question Generator. Your task is to create a question based on the given image.

**Requirements (must follow exactly):**

1. Analyze the image carefully and understand all details.
2. Generate **exactly one question** that is directly related to the image.
3. Choose the question type from **only one** of the following:
- `multiple choice` (Yes/No or four options labeled A, B, C, D; only one correct answer)
- `numerical` (requires a specific numeric answer)
- `regression` (requires predicting a continuous value, such as a measurement, quantity, or coordinate)
4. The question must require analysis or reasoning, not just description.
5. Provide the correct answer. Include units if applicable.
6. **Output must be strictly in this format, with nothing else:**
7. Question type must be **only one** of: `multiple choice`, `numerical`, `regression`.

The following THREE blocks:
<type>X</type>
<question>Y</question>
<answer>Z</answer>

**Strict rules:**
- Do **not** use any other labels, punctuation, or formatting.
- Do **not** add commentary, explanations, or extra text.
- `X` must be exactly one of: `multiple choice`, `numerical`, or `regression`.
- Always use the exact three-line structure above.
- Do NOT include any units; provide only the numeric value or option.
**Example of correct output:**
<type>numerical</type>
<question>How many clubs are there in Florida?</question>
<answer>5.7M</answer>"""

# The reasoner instruction of the authors' evaluation and curation scripts (and the paper's evaluation).
PAPER_REASONER_PROMPT = "{question}\nPlease reason step by step, and put your final answer within \\boxed{{}}."

# The frozen reasoner's prompt when it votes on questions during questioner training
# (``vllm_service_init/start_vllm_server.py``; ``questioner.vote_prompt: authors``). The second line of the
# user text is a plain (not f-) string in their code, so the model sees ``\boxed{{answer}}`` with doubled
# braces: kept as they wrote it.
AUTHORS_VOTER_SYSTEM_PROMPT = (
    "You are an AI visual question answering assistant. Answer questions based only on the visual content "
    "provided. You **must only output your final answer inside \\boxed{}**. Do not write explanations or any "
    "other text.\n"
)
AUTHORS_VOTER_PROMPT = (
    "This is a question: {question}. The question type is: {qtype}.\n"
    "**IMPORTANT:** Only output your answer in the form \\boxed{{{{answer}}}}.Do NOT include any units; provide "
    "only the numeric value or option.\n"
)


def questioner_messages(style: str = "compact") -> list[dict]:
    """Chat messages asking the questioner for one question about the (single) image."""
    text = COMPACT_QUESTIONER_PROMPT if style == "compact" else PAPER_QUESTIONER_PROMPT
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]


def voter_messages(question: str, qtype: str | None, style: str = "compact", prompt: str = "reasoner") -> list[dict]:
    """Chat messages for the frozen reasoner's votes in the questioner stage.

    ``prompt="reasoner"`` is the reasoner's own prompt (:func:`reasoner_messages`); ``prompt="authors"`` is the
    authors' server prompt word for word: a system message, then the image and the question with its type.
    A missing type (lenient parsing) is written as an empty string; the authors' server does not vote on
    such replies at all (their reward parser needs the type).

    >>> m = voter_messages("How many cubes?", "numerical", prompt="authors")
    >>> [x["role"] for x in m], m[1]["content"][1]["text"].splitlines()[0]
    (['system', 'user'], 'This is a question: How many cubes?. The question type is: numerical.')
    >>> "boxed{{answer}}.Do NOT" in m[1]["content"][1]["text"]   # doubled braces, as the authors wrote it
    True
    """
    if prompt == "reasoner":
        return reasoner_messages(question, style)
    if prompt != "authors":
        raise ValueError(f"unknown vote prompt {prompt!r}")
    text = AUTHORS_VOTER_PROMPT.format(question=question, qtype=qtype or "")
    return [{"role": "system", "content": AUTHORS_VOTER_SYSTEM_PROMPT},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]


def reasoner_messages(question: str, style: str = "compact") -> list[dict]:
    """Chat messages asking the reasoner to answer ``question`` about the (single) image."""
    template = COMPACT_REASONER_PROMPT if style == "compact" else PAPER_REASONER_PROMPT
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": template.format(question=question)}]}]


# --- parsing -------------------------------------------------------------------------------------

_TAG_SPACES = re.compile(r"\s*(<|>|/)\s*")
_STRICT = re.compile(r"<type>(.*?)</type>.*?<question>(.*?)</question>.*?<answer>(.*?)</answer>", re.DOTALL)
_TAGS = {name: re.compile(rf"<{name}>(.*?)</{name}>", re.DOTALL) for name in ("type", "question", "answer")}


class ParsedQuestion(NamedTuple):
    """A parsed questioner reply: ``(qtype, question, answer)``; qtype and answer may be ``None``."""

    qtype: str | None
    question: str
    answer: str | None


def normalise_tags(text: str) -> str:
    """The authors' normalisation: drop whitespace around ``<``, ``>`` and ``/`` everywhere.

    >>> normalise_tags("< question > Is 3 / 4 < 1 ? </ question >")
    '<question>Is 3/4<1 ?</question>'
    """
    return _TAG_SPACES.sub(r"\1", text)


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _qtype(value: str | None) -> str | None:
    value = re.sub(r"\s+", " ", (value or "").strip().strip("`'\"*").strip().lower())
    return value or None


def parse_question(text: str | None, strict: bool = False) -> ParsedQuestion | None:
    """Parse a questioner reply into ``(qtype, question, answer)``, or ``None`` when it has no question.

    qtype is lowercased free text (the authors use ``multiple choice``, ``numerical``, ``regression``).

    >>> parse_question("<type>Numerical</type>\\n<question>How many cubes?</question>\\n<answer>3</answer>")
    ParsedQuestion(qtype='numerical', question='How many cubes?', answer='3')
    >>> parse_question("< type >multiple  choice</type ><question >Is it red? A. yes B. no</ question>")
    ParsedQuestion(qtype='multiple choice', question='Is it red? A. yes B. no', answer=None)
    >>> parse_question("<question>What is 3 / 4 of 8?</question>")   # the paper's format; '/' spaces go
    ParsedQuestion(qtype=None, question='What is 3/4 of 8?', answer=None)
    >>> parse_question("<question> </question><answer>3</answer>") is None, parse_question("no tags") is None
    (True, True)
    >>> parse_question("<question>How many?</question>", strict=True) is None   # authors: all three tags
    True
    """
    if not text:
        return None
    normalised = normalise_tags(text)
    if strict:
        match = _STRICT.search(normalised)
        if not match:
            return None
        qtype, question, answer = _qtype(match.group(1)), _clean(match.group(2)), _clean(match.group(3))
        return ParsedQuestion(qtype, question, answer) if question and answer else None
    found = {name: pattern.findall(normalised) for name, pattern in _TAGS.items()}
    question = _clean(found["question"][-1]) if found["question"] else None
    if question is None:
        return None
    qtype = _qtype(found["type"][-1]) if found["type"] else None
    answer = _clean(found["answer"][-1]) if found["answer"] else None
    return ParsedQuestion(qtype, question, answer)
