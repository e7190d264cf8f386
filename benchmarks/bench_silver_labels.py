"""Benchmark: silver labelling (majority vote) of a curation pool, fast vs the greedy pairwise reference.

Run:  python benchmarks/bench_silver_labels.py [--questions 8000] [--samples 9] [--seed 0]

The pool imitates the authors' curation stage (8 questions x 1000 images, 9 reasoner samples each):
every question has a true answer of one kind (integers, decimals, fractions, LaTeX, words, option
letters, yes/no), written in the surface forms reasoners use (``1/2``, ``0.5``, ``\\frac{1}{2}``,
``$0.50$``, ``(B)``, ``B.``, ``Yes, it is.``, ``\\text{red}``, ...), mixed with wrong answers and with
missing boxes (``None``).

- reference: the authors' algorithm, each answer compared with every cluster representative through
  ``same_answer_uncached`` (``benchmarks/references.py``) (same relation as ``same_answer``, recomputed
  for every pair, as the authors' grader does);
- fast: :func:`visplay.selfplay.answers.majority_vote` from empty caches (keys per distinct string,
  comparisons per distinct key pair, math-verify parses cached); best of 3 runs.

Before timing, math-verify's parser is warmed on every LaTeX answer of the pool (it speeds up as it sees
input, which would otherwise favour whichever side runs second); our own caches are emptied.

Both must give identical silver answers, confidences and clusters. For information the reference is also
timed with the cached ``same_answer`` (the greedy loop alone, warm caches).
"""

from __future__ import annotations

import argparse
import random
import time
from fractions import Fraction

from references import majority_vote_reference

from visplay.selfplay.answers import clear_caches, majority_vote, same_answer

WORDS = ("red blue green yellow purple gray brown cyan orange black white pink cat act dog god cube sphere "
         "cylinder circle square triangle left right north south car bus truck apple banana lung heart "
         "liver kidney normal fracture tumor".split())
NUMBER_WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()
# (expression, equivalent surface forms); wrong answers are drawn from the other entries.
LATEX = [
    ("\\sqrt{2}", ["\\sqrt{2}", "\\sqrt2", "$\\sqrt{2}$", "2^{1/2}"]),
    ("2\\pi", ["2\\pi", "2 \\pi", "\\pi \\cdot 2", "$2\\pi$"]),
    ("\\frac{\\sqrt{3}}{2}",
     ["\\frac{\\sqrt{3}}{2}", "\\dfrac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}", "\\sqrt{3}/2"]),
    ("3\\sqrt{2}", ["3\\sqrt{2}", "\\sqrt{18}", "3 \\sqrt{2}"]),
    ("\\frac{\\pi}{4}", ["\\frac{\\pi}{4}", "\\pi/4", "\\frac{1}{4}\\pi"]),
    ("x^2+1", ["x^2+1", "1+x^2", "x^{2} + 1"]),
    ("2x+3", ["2x+3", "3+2x", "2 x + 3"]),
    ("(1, 2)", ["(1, 2)", "(1,2)"]),
    ("x=4", ["x=4", "x = 4", "4"]),
    ("\\sqrt{5}", ["\\sqrt{5}", "\\sqrt 5", "5^{1/2}"]),
    ("4\\sqrt{3}", ["4\\sqrt{3}", "\\sqrt{48}"]),
    ("\\frac{2}{3}\\pi", ["\\frac{2}{3}\\pi", "\\frac{2\\pi}{3}"]),
    ("e^{2}", ["e^{2}", "e^2"]),
    ("\\log_{2} 8", ["\\log_{2} 8", "3"]),
    ("a+b", ["a+b", "b+a"]),
    ("\\frac{1}{\\sqrt{2}}", ["\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}"]),
    ("10\\%", ["10\\%", "10%", "10"]),
    ("30^\\circ", ["30^\\circ", "30^{\\circ}", "30°", "30"]),
]


def _surface_forms(kind: str, value, rng: random.Random) -> list[str]:
    """How reasoners write ``value`` (all equivalent under same_answer)."""
    if kind == "int":
        forms = [str(value), f"{value}.", f"${value}$", f"\\text{{{value}}}", f" {value} "]
        if value < len(NUMBER_WORDS):
            forms.append(NUMBER_WORDS[value])
        if value >= 1000:
            forms.append(f"{value:,}")
        return forms
    if kind == "dec":
        return [f"{value}", f"{value}0", f"${value}$", f"{value} cm"]
    if kind == "frac":
        p, q = value.numerator, value.denominator
        forms = [f"{p}/{q}", f"\\frac{{{p}}}{{{q}}}", f"\\dfrac{{{p}}}{{{q}}}", f"${p}/{q}$"]
        if 1000 % q == 0 or 100 % q == 0 or q in (2, 4, 5, 8, 20, 25):
            forms.append(str(float(value)))
        return forms
    if kind == "latex":
        return list(LATEX[value][1])
    if kind == "word":
        return [value, value.capitalize(), f"\\text{{{value}}}", f"{value}.", f"The {value}"]
    if kind == "option":
        return [value, f"({value})", f"{value}.", f"{value}) {rng.choice(WORDS)}", f"Option {value}", value.lower()]
    if kind == "yesno":
        return {"yes": ["Yes", "yes", "Yes.", "Yes, it is.", "YES", "True"],
                "no": ["No", "no", "No.", "No, it is not.", "False"]}[value]
    raise ValueError(kind)


def _random_value(kind: str, rng: random.Random, near=None):
    if kind == "int":
        base = near if near is not None else rng.choice(
            [rng.randint(0, 12), rng.randint(0, 60), rng.randint(100, 2500)])
        return max(0, base + rng.choice([-2, -1, 1, 2, 3])) if near is not None else base
    if kind == "dec":
        base = near if near is not None else round(rng.uniform(0, 100), rng.choice([1, 2]))
        return round(base + rng.choice([-1, 1]) * rng.choice([0.1, 0.5, 1.0, 2.5]), 2) if near is not None else base
    if kind == "frac":
        while True:
            value = Fraction(rng.randint(1, 12), rng.randint(2, 16))
            if value.denominator > 1 and value != near:
                return value
    if kind == "latex":
        return rng.choice([i for i in range(len(LATEX)) if i != near])
    if kind == "word":
        return rng.choice([w for w in WORDS if w != near])
    if kind == "option":
        return rng.choice([x for x in "ABCD" if x != near])
    if kind == "yesno":
        return "no" if near == "yes" else "yes"
    raise ValueError(kind)


KINDS = [("int", 0.28), ("dec", 0.10), ("frac", 0.10), ("latex", 0.12), ("word", 0.15), ("option", 0.15),
         ("yesno", 0.10)]


def make_pool(questions: int, samples: int, seed: int = 0) -> list[list[str | None]]:
    """``questions`` lists of ``samples`` extracted answers (None = no box)."""
    rng = random.Random(seed)
    kinds, weights = zip(*KINDS)
    pool = []
    for _ in range(questions):
        kind = rng.choices(kinds, weights)[0]
        truth = _random_value(kind, rng)
        wrong = [_random_value(kind, rng, near=truth) for _ in range(rng.randint(1, 3))]
        p_true = rng.uniform(0.15, 1.0)
        p_missing = rng.choice([0.0, 0.05, 0.1, 0.3, 1.0 if rng.random() < 0.03 else 0.1])  # some: no box at all
        answers: list[str | None] = []
        for _ in range(samples):
            roll = rng.random()
            if roll < p_missing:
                answers.append(None)
            elif rng.random() < p_true:
                answers.append(rng.choice(_surface_forms(kind, truth, rng)))
            else:
                answers.append(rng.choice(_surface_forms(kind, rng.choice(wrong), rng)))
        pool.append(answers)
    return pool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=8000)
    parser.add_argument("--samples", type=int, default=9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    pool = make_pool(args.questions, args.samples, args.seed)
    n_answers = sum(len(a) for a in pool)
    distinct = len({a for answers in pool for a in answers if a is not None})
    print(f"{len(pool)} questions x {args.samples} answers = {n_answers} answers, {distinct} distinct strings, "
          f"{sum(a is None for answers in pool for a in answers)} missing boxes", flush=True)
    # Warm the libraries, not our caches: math-verify's LaTeX parser (antlr) gets faster as it sees more
    # input, which would favour whichever side runs second.
    from math_verify import parse

    for text in {a for answers in pool for a in answers if a is not None and "\\" in a}:
        parse(f"${text}$")

    print("reference (greedy pairwise, uncached same_answer) ...", flush=True)
    start = time.perf_counter()
    reference = [majority_vote_reference(answers) for answers in pool]
    reference_seconds = time.perf_counter() - start

    fast_seconds = float("inf")
    for _ in range(3):  # best of 3, each from empty caches (a short run is easily disturbed by other load)
        clear_caches()
        start = time.perf_counter()
        fast = [majority_vote(answers) for answers in pool]
        fast_seconds = min(fast_seconds, time.perf_counter() - start)

    start = time.perf_counter()
    warm = [majority_vote_reference(answers, same=same_answer) for answers in pool]
    warm_seconds = time.perf_counter() - start

    identical = all(
        f.answer == r.answer and f.confidence == r.confidence and f.clusters == r.clusters
        for f, r in zip(fast, reference)
    ) and all(w == r for w, r in zip(warm, reference))
    mismatches = sum(f != r for f, r in zip(fast, reference))
    silver = sum(v.answer is not None for v in fast)
    mean_c = sum(v.confidence for v in fast) / len(fast)
    print(f"  silver answers: {silver}/{len(fast)}, mean confidence {mean_c:.3f}")
    print(f"  identical silver answers, confidences and clusters: {identical} ({mismatches} mismatches)")
    print(f"  reference, uncached same_answer: {reference_seconds:8.2f} s")
    print(f"  reference loop, cached same_answer (warm, for information): {warm_seconds:8.2f} s")
    print(f"  majority_vote (cold caches, best of 3): {fast_seconds:8.2f} s")
    print(f"  speed-up vs reference: {reference_seconds / fast_seconds:.0f}x   (target >= 20x)")
    print(f"RESULT identical={identical} speedup={reference_seconds / fast_seconds:.0f}x")


if __name__ == "__main__":
    main()
