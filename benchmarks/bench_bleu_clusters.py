"""Benchmark: vectorised BLEU clustering vs the authors' nltk + sklearn reference.

Run:  python benchmarks/bench_bleu_clusters.py [--n 4096] [--check 1000] [--seed 0]

1. Identity: on ``--check`` questions the reference (nltk sentence_bleu for every pair, sklearn
   AgglomerativeClustering) and :func:`visplay.selfplay.diversity.bleu_clusters` must give the same
   partition, and the condensed distances must be bit-identical. The reference's per-pair BLEU cost is
   measured on this run.
2. Speed at ``--n`` questions: bleu_clusters is timed for real; the reference is its measured per-pair
   cost times n(n-1)/2 pairs (the quadratic count extrapolated) plus sklearn's clustering of an n x n
   matrix, timed for real.

Questions imitate a questioner's rollout batch: templated questions about charts, scenes, geometry,
documents and driving, with shared n-grams, multiple-choice options, exact and near duplicates, a few
very short and a few empty (unparsed) ones.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from visplay.selfplay.diversity import _first_seen_labels, bleu_clusters, bleu_distances

COLORS = "red blue green yellow purple gray brown cyan orange black white pink".split()
SHAPES = "cube sphere cylinder cone square circle triangle rectangle star pyramid".split()
SIZES = "large small tiny big medium".split()
PLACES = "left right top bottom center front back".split()
ITEMS = "car truck bus pedestrian bicycle traffic light stop sign lane marking building tree".split()
METRICS = "revenue profit sales population temperature share rate score cost growth".split()
YEARS = [str(y) for y in range(1990, 2025)]
ORGANS = "lung heart liver kidney brain spine knee".split()

TEMPLATES = [
    "How many {color} {shape}s are there in the image ?",
    "How many {color} {shape}s are to the {place} of the {size} {color2} {shape2} ?",
    "What is the color of the {size} {shape} on the {place} side of the image ?",
    "Is the {size} {color} {shape} to the {place} of the {color2} {shape2} ?",
    "What is the difference between the {metric} in {year} and the {metric} in {year2} according to the chart ?",
    "According to the bar chart , which year had the highest {metric} ?",
    "Based on the line graph , by what percentage did the {metric} increase from {year} to {year2} ?",
    "What is the sum of the {metric} values for {year} and {year2} shown in the table ?",
    "If the {size} {shape} has a side length of {num} cm , what is its area in square centimeters ?",
    "In the figure , angle ABC is {num} degrees . What is the measure of angle ACB if AB equals AC ?",
    "What is the ratio of {color} {shape}s to {color2} {shape2}s in the image ?",
    "Which object is closest to the {item} in the {place} lane ? A. {item} B. {item2} C. {color} {shape} D. none",
    "Should the driver of the {item} stop before the {item2} ahead ? Answer yes or no .",
    "How many {item}s are visible in the scene , and how many of them are {color} ?",
    "What abnormality is visible in the {organ} in this scan ? A. fracture B. tumor C. fluid D. normal",
    "Estimate the {metric} in {year} from the chart , rounded to the nearest whole number .",
    "What is the value of x in the diagram if the perimeter is {num} ?",
    "Does the {color} {shape} appear larger than the {color2} {shape2} ?",
    "What fraction of the {shape}s in the image are {color} ?",
    "Which {shape} is the {size}est object in the image ?",
]


def _fill(rng: random.Random) -> str:
    template = rng.choice(TEMPLATES)
    return template.format(
        color=rng.choice(COLORS), color2=rng.choice(COLORS), shape=rng.choice(SHAPES), shape2=rng.choice(SHAPES),
        size=rng.choice(SIZES), place=rng.choice(PLACES), item=rng.choice(ITEMS), item2=rng.choice(ITEMS),
        metric=rng.choice(METRICS), year=rng.choice(YEARS), year2=rng.choice(YEARS), num=rng.randint(2, 180),
        organ=rng.choice(ORGANS),
    )


def make_questions(n: int, seed: int = 0) -> list[str]:
    """A questioner-like batch: templated questions, ~12% exact and ~10% near duplicates, a few odd ones."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(n):
        roll = rng.random()
        if out and roll < 0.12:
            out.append(rng.choice(out))  # exact duplicate: a collapsed questioner
        elif out and roll < 0.22:
            words = rng.choice(out).split()
            if words:
                words[rng.randrange(len(words))] = rng.choice(COLORS + SHAPES + YEARS)
            out.append(" ".join(words))  # near duplicate
        elif roll < 0.235:
            out.append(rng.choice(["", "Why ?", "What is shown ?", "Count them .", "Yes or no ?"]))
        else:
            out.append(_fill(rng))
    return out


def _time_reference_pairs(questions: list[str]) -> tuple[np.ndarray, float]:
    """The reference's condensed distances (nltk per pair) and the seconds per pair."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    smoother = SmoothingFunction().method1
    tokens = [q.split() for q in questions]
    n = len(tokens)
    out = np.empty(n * (n - 1) // 2)
    k = 0
    start = time.perf_counter()
    for i in range(n):
        for j in range(i + 1, n):
            out[k] = 1 - sentence_bleu([tokens[j]], tokens[i], smoothing_function=smoother)
            k += 1
    return out, (time.perf_counter() - start) / max(1, k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4096, help="batch size for the speed comparison")
    parser.add_argument("--check", type=int, default=1000, help="questions for the identity check")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from sklearn.cluster import AgglomerativeClustering

    # 1. identity on --check questions
    check = make_questions(args.check, seed=args.seed + 1)
    print(f"identity check on {len(check)} questions (nltk for all {len(check) * (len(check) - 1) // 2} pairs) ...",
          flush=True)
    ref_condensed, per_pair = _time_reference_pairs(check)
    ours_condensed = bleu_distances(check)
    identical_values = bool(np.array_equal(ref_condensed, ours_condensed))
    from scipy.spatial.distance import squareform

    # The reference partition: sklearn on the nltk matrix just computed (what bleu_clusters_reference
    # does, without paying for the nltk pairs twice).
    ref_labels = _first_seen_labels(AgglomerativeClustering(
        n_clusters=None, distance_threshold=0.5, metric="precomputed", linkage="average"
    ).fit_predict(squareform(ref_condensed)))
    our_labels = bleu_clusters(check)
    same_partition = ref_labels == our_labels
    print(f"  distances bit-identical: {identical_values}   partition identical: {same_partition}   "
          f"clusters: {max(our_labels) + 1}")

    # 2. speed at --n questions
    questions = make_questions(args.n, seed=args.seed)
    n = len(questions)
    pairs = n * (n - 1) // 2
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        labels = bleu_clusters(questions)
        best = min(best, time.perf_counter() - start)
    square = squareform(bleu_distances(questions))  # the reference's matrix (values are identical)
    start = time.perf_counter()
    AgglomerativeClustering(n_clusters=None, distance_threshold=0.5, metric="precomputed",
                            linkage="average").fit_predict(square)
    sklearn_seconds = time.perf_counter() - start
    reference = per_pair * pairs + sklearn_seconds
    print(f"\nn = {n} questions, {pairs} pairs, {max(labels) + 1} clusters")
    print(f"  reference: {per_pair * 1e6:.1f} us/pair (measured on {args.check}) x {pairs} pairs "
          f"= {per_pair * pairs:.1f} s  + sklearn clustering {sklearn_seconds:.2f} s  = {reference:.1f} s")
    print(f"  bleu_clusters: {best:.3f} s (best of 3)")
    print(f"  speed-up: {reference / best:.0f}x   (target >= 300x)")
    print(f"RESULT identical={identical_values and same_partition} speedup={reference / best:.0f}x")


if __name__ == "__main__":
    main()
