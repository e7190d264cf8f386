"""The held-out labeled toy benchmark, and the blind baseline to print next to every accuracy on it.

The benchmark is a fixed-seed set of questions (default 840 = 140 per family), drawn by the same balanced
sampler as training examples (the answer uniform per question string), on *held-out* scenes only: the
scene split (see ``visplay.world.scenes``) guarantees no benchmark scene layout appears in training or among
the unlabeled images; its random stream also lives in its own seed namespace ("visplay/world/benchmark/S").

Parquet columns: ``id`` (str), ``question`` (str), ``answer`` (str), ``image`` (PNG bytes), ``family``
(str), ``qtype`` (str), plus ``scene`` (the scene as JSON, for error analysis; never needed to score).

A shifted benchmark (``shift=`` below, or :func:`shift_benchmark` on a written file) has the same rows with
the images rendered under a shift (``visplay.world.shift``): same ids, questions, answers and scenes, since
a shift only changes pixels and draws nothing from the benchmark's random stream. Its parquet schema
metadata says which shift (``visplay.shift``); an unshifted file carries none and is byte-identical to before.

The blind baseline is the accuracy of answering, for each exact question string, the answer most
frequent for that string in a *separate training sample* of balanced examples (leave-one-out on the
benchmark itself would be biased low: most strings occur once or twice). Strings the sample never saw
get the most frequent sample answer among those the question allows (its answer space), i.e. the blind
model still knows that "Is there ...?" takes yes or no. With balanced answers it sits at chance.
"""

from __future__ import annotations

import collections
import functools
import os
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from visplay.data.codec import png_bytes
from visplay.io import atomic_path
from visplay.world.examples import answer_space, generate_question, sample_example
from visplay.world.grammar import FAMILIES, family_of
from visplay.world.oracle import parse_question
from visplay.world.scenes import Scene, sample_scene
from visplay.world.shift import Shift, render_shifted

DEFAULT_SIZE = 840  # 140 per family
COLUMNS = ("id", "question", "answer", "image", "family", "qtype", "scene")
_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("image", pa.binary()),
        ("family", pa.string()),
        ("qtype", pa.string()),
        ("scene", pa.string()),
    ]
)


QUESTION_MIXES = ("balanced", "images")
SHIFT_METADATA_KEY = b"visplay.shift"


def _image_bytes(scene: Scene, shift: Shift | None) -> bytes:
    """The PNG of a benchmark scene, under ``shift`` if any: the one place both writers render."""
    return png_bytes(render_shifted(scene, shift))


def _write_table(path: str | os.PathLike, table: pa.Table, shift: Shift | None) -> None:
    metadata = {k: v for k, v in (table.schema.metadata or {}).items() if k != SHIFT_METADATA_KEY}
    if shift is not None and not shift.is_none:  # no key at all when unshifted: today's bytes
        metadata[SHIFT_METADATA_KEY] = shift.spec().encode()
    table = table.replace_schema_metadata(metadata or None)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def benchmark_shift(path: str | os.PathLike) -> str:
    """The shift a benchmark file's images were rendered under (``"none"`` for a clean one)."""
    metadata = pq.read_schema(path).metadata or {}
    return metadata.get(SHIFT_METADATA_KEY, b"none").decode()


def _images_like_example(rng: random.Random, family: str):
    """A question of ``family`` by the world's own generator on a fresh scene drawn like the unlabeled images
    (uniform random layouts, training split; answers follow the scene)."""
    while True:
        try:
            return generate_question(rng, sample_scene(rng, split="train"), family)
        except ValueError:  # e.g. spatial on a one-object scene
            continue


def build_benchmark(n: int = DEFAULT_SIZE, seed: int = 0, questions: str = "balanced",
                    shift: Shift | None = None) -> list[dict]:
    """The benchmark rows: families in turn (balanced to within one); images under ``shift`` if given.

    ``questions="balanced"`` (the benchmark): answers balanced per question string, held-out layouts.
    ``questions="images"`` (the in-distribution check): the world's question generator on scenes drawn like
    the unlabeled images, so answers follow the scenes ("yes" to most existence questions, small counts),
    as the questions a loop asks about those images do; its own seed namespace.

    >>> rows = build_benchmark(n=12, seed=0)
    >>> [r["family"] for r in rows[:3]], rows[0]["image"][:4]
    (['counting', 'existence', 'attribute'], b'\\x89PNG')
    >>> [r["family"] for r in build_benchmark(n=2, questions="images")]
    ['counting', 'existence']
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    if questions not in QUESTION_MIXES:
        raise ValueError(f"questions must be one of {QUESTION_MIXES}, not {questions!r}")
    namespace = "benchmark" if questions == "balanced" else "benchmark-images"
    rng = random.Random(f"visplay/world/{namespace}/{seed}")
    rows = []
    for i in range(n):
        family = FAMILIES[i % len(FAMILIES)]
        ex = sample_example(rng, family=family, split="heldout") if questions == "balanced" else \
            _images_like_example(rng, family)
        rows.append(
            {
                "id": f"toy-{i:05d}",
                "question": ex.question,
                "answer": ex.answer,
                "image": _image_bytes(ex.scene, shift),
                "family": ex.family,
                "qtype": ex.qtype,
                "scene": ex.scene.to_json(),
            }
        )
    return rows


def write_benchmark(path: str | os.PathLike, n: int = DEFAULT_SIZE, seed: int = 0,
                    questions: str = "balanced", shift: Shift | None = None) -> list[dict]:
    """Build the benchmark and write it as parquet, atomically; returns the rows. Same args, same bytes."""
    rows = build_benchmark(n=n, seed=seed, questions=questions, shift=shift)
    _write_table(path, pa.Table.from_pylist(rows, schema=_SCHEMA), shift)
    return rows


def shift_benchmark(src_parquet: str | os.PathLike, out_parquet: str | os.PathLike,
                    shift: Shift | None) -> list[dict]:
    """Write a copy of a benchmark file with every image re-rendered from its ``scene`` column under
    ``shift`` (atomically; ``out_parquet`` may be ``src_parquet``); returns the rows written.

    The copy holds the same held-out items, so clean and shifted accuracies compare item for item; it
    equals ``write_benchmark(..., shift=shift)`` with the source's arguments. Re-rendering from the scene
    (not shifting the stored pixels) means a source that was itself shifted is not shifted twice.
    """
    table = pq.read_table(src_parquet)
    for column in ("image", "scene"):
        if column not in table.column_names:
            raise ValueError(f"{src_parquet} has no {column} column: it is not a toy benchmark file")
    images = [_image_bytes(Scene.from_json(text), shift) for text in table.column("scene").to_pylist()]
    # Only the image column changes: every other column, and its type, is the source's.
    table = table.set_column(table.column_names.index("image"), table.schema.field("image"),
                             pa.array(images, type=table.schema.field("image").type))
    _write_table(out_parquet, table, shift)
    return table.to_pylist()


def read_benchmark(path: str | os.PathLike) -> list[dict]:
    """The rows of a benchmark parquet file."""
    return pq.read_table(path).to_pylist()


# --- blind baseline ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlindBaseline:
    """Accuracy of a blind model, and what uniform guessing inside each answer space would score."""

    accuracy: float
    chance: float  # mean over rows of 1 / (size of the question's answer space)
    per_family: dict[str, float] = field(default_factory=dict)
    n_rows: int = 0
    n_prior: int = 0
    correct: tuple[bool, ...] = ()  # per row, in the order given: for blind accuracy on any subset

    def __str__(self) -> str:
        return f"blind {100 * self.accuracy:.1f}% (chance {100 * self.chance:.1f}%, {self.n_rows} questions)"


def _mode(counter: Mapping[str, int], allowed: Iterable[str] | None = None) -> str | None:
    items = [(a, c) for a, c in counter.items() if allowed is None or a in allowed]
    if not items:
        return None
    return min(items, key=lambda ac: (-ac[1], ac[0]))[0]  # ties broken by the answer text: deterministic


def _fit(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], collections.Counter]:
    """Most frequent answer per question string, and all answer counts."""
    per_question: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    overall: collections.Counter = collections.Counter()
    for question, answer in pairs:
        per_question[question][answer] += 1
        overall[answer] += 1
    return {q: _mode(c) for q, c in per_question.items()}, overall


@functools.lru_cache(maxsize=4)
def _training_prior(n_prior: int, seed: int) -> tuple[dict[str, str], collections.Counter]:
    rng = random.Random(f"visplay/world/blind-prior/{seed}")
    return _fit((ex.question, ex.answer) for ex in (sample_example(rng) for _ in range(n_prior)))


def blind_baseline(
    rows: Iterable[Mapping], prior: Iterable[Mapping] | None = None, n_prior: int = 5000, seed: int = 0
) -> BlindBaseline:
    """Score the blind model (see the module docstring) on ``rows`` (dicts with question, answer, family).

    The blind model is fitted on ``prior`` (rows with question and answer, e.g. the examples a model was
    trained on) or, by default, on ``n_prior`` fresh balanced training examples drawn with ``seed``.

    >>> rows = [{"question": "Is there a red circle?", "answer": "yes", "family": "existence"}]
    >>> b = blind_baseline(rows, prior=rows)
    >>> b.accuracy, b.chance, b.n_rows
    (1.0, 0.5, 1)
    """
    if prior is not None:
        prior = list(prior)
        by_question, overall = _fit((r["question"], r["answer"]) for r in prior)
        n_prior = len(prior)
    else:
        by_question, overall = _training_prior(n_prior, seed)
    hits: dict[str, list[int]] = collections.defaultdict(list)
    chances, correct = [], []
    for row in rows:
        query = parse_question(row["question"])
        space = answer_space(query) if query is not None else ()
        guess = by_question.get(row["question"]) or _mode(overall, space) or _mode(overall)
        family = row.get("family") or (family_of(query) if query is not None else "unparsed")
        hits[family].append(int(guess == row["answer"]))
        correct.append(guess == row["answer"])
        chances.append(1 / len(space) if space else 0.0)
    everything = [h for family_hits in hits.values() for h in family_hits]
    if not everything:
        raise ValueError("no rows to score")
    return BlindBaseline(
        accuracy=sum(everything) / len(everything),
        chance=sum(chances) / len(chances),
        per_family={f: sum(h) / len(h) for f, h in sorted(hits.items())},
        n_rows=len(everything),
        n_prior=n_prior,
        correct=tuple(correct),
    )


def family_counts(rows: Iterable[Mapping]) -> dict[str, int]:
    """How many rows each family has, in FAMILIES order."""
    counts = collections.Counter(r["family"] for r in rows)
    return {f: counts.get(f, 0) for f in FAMILIES}
