"""BLEU clustering (visplay.selfplay.diversity) against the authors' nltk + sklearn reference."""

from __future__ import annotations

import random

import numpy as np
import pytest
from references import bleu_clusters_reference

from visplay.selfplay.diversity import (
    _cut_like_sklearn,
    _first_seen_labels,
    bleu_clusters,
    bleu_clusters_by_group,
    bleu_distances,
)

nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")
sklearn_cluster = pytest.importorskip("sklearn.cluster")

WORDS = "how many red blue green cubes spheres are there in the image left of right what color is large small".split()


def _questions(n: int, seed: int) -> list[str]:
    """Templated questions with shared n-grams, duplicates, repeated tokens and nltk's edge cases."""
    rng = random.Random(seed)
    templates = [
        "how many {a} {b} are there in the image ?",
        "what color is the {a} {b} to the {c} of the {d} ?",
        "is the {a} {b} {c} than the {d} one ?",
        "the the the {a} {a} {b}",
    ]
    odd = ["", "yes", "how many ?", "red red", "a b c", " ".join(rng.choice(WORDS) for _ in range(70))]
    out: list[str] = []
    for _ in range(n):
        roll = rng.random()
        if out and roll < 0.15:
            out.append(rng.choice(out))  # exact duplicate
        elif roll < 0.25:
            out.append(rng.choice(odd))  # empty, shorter than 4 tokens, longer than the table limit
        else:
            out.append(rng.choice(templates).format(a=rng.choice(WORDS), b=rng.choice(WORDS), c=rng.choice(WORDS),
                                                    d=rng.choice(WORDS)))
    return out


def _nltk_condensed(questions: list[str]) -> np.ndarray:
    smoother = nltk_bleu.SmoothingFunction().method1
    n = len(questions)
    out = []
    for i in range(n):
        for j in range(i + 1, n):
            score = nltk_bleu.sentence_bleu([questions[j].split()], questions[i].split(), smoothing_function=smoother)
            out.append(1 - score)
    return np.asarray(out, dtype=np.float64)


@pytest.fixture(params=["whole-batch products", "listed pairs"])
def path(request, monkeypatch):
    """Run a test through both ways of computing distances (they must agree with nltk bit for bit)."""
    import visplay.selfplay.diversity as diversity

    monkeypatch.setattr(diversity, "_SMALL", 1 if request.param == "whole-batch products" else 10**9)
    return request.param


@pytest.mark.parametrize("seed", [0, 1])
def test_distances_are_bit_identical_to_nltk(seed, path):
    questions = _questions(60, seed)
    assert np.array_equal(bleu_distances(questions), _nltk_condensed(questions))


def test_distances_edge_cases_match_nltk(path):
    questions = ["", "", "yes", "yes", "yes no", "a b c", "a b c", "a b c d", "a a a a a", "a", "b a", "x y z w v"]
    assert np.array_equal(bleu_distances(questions), _nltk_condensed(questions))
    # Short duplicates are not at distance 0 (method1's 0.1 for the missing 4-grams), empty ones at 1.
    d = bleu_distances(["yes", "yes", "", ""])
    assert d[0] == pytest.approx(1 - 0.1 ** 0.75) and d[-1] == 1.0


def test_distances_stay_exact_when_numpy_exp_differs_from_libm(monkeypatch, path):
    import visplay.selfplay.diversity as diversity

    monkeypatch.setattr(diversity, "_numpy_exp_is_libm", lambda: False)  # numpy's own SIMD exp on some CPUs
    questions = _questions(40, 5)
    assert np.array_equal(bleu_distances(questions), _nltk_condensed(questions))


def test_long_questions_take_the_general_path(path):
    rng = random.Random(3)
    long = [" ".join(rng.choice(WORDS[:6]) for _ in range(rng.randint(60, 90))) for _ in range(12)]
    questions = long + long[:3] + ["how many red cubes"]
    assert np.array_equal(bleu_distances(questions), _nltk_condensed(questions))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_partition_equals_sklearn_reference(seed):
    questions = _questions(60, seed)
    assert bleu_clusters(questions) == bleu_clusters_reference(questions)


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.8, 1.0])
def test_partition_equals_reference_at_other_thresholds(threshold):
    questions = _questions(50, 7)
    assert bleu_clusters(questions, threshold) == bleu_clusters_reference(questions, threshold)


def test_grouped_clusters_equal_the_reference_group_by_group():
    questions = _questions(64, 11)
    groups = [i // 8 for i in range(64)]
    labels = bleu_clusters_by_group(questions, groups)
    for g in range(8):
        assert labels[g * 8 : (g + 1) * 8] == bleu_clusters_reference(questions[g * 8 : (g + 1) * 8])
    # Groups need not be contiguous; a lone question gets label 0; two one-token duplicates do not merge.
    shuffled = [3, 1, 3, 2, 1, 3]
    labels = bleu_clusters_by_group(["a b c d e", "q", "a b c d e", "z", "q", "x y z w v"], shuffled)
    assert labels == [0, 0, 0, 0, 1, 1]
    with pytest.raises(ValueError):
        bleu_clusters_by_group(["a"], [1, 2])


def test_small_inputs():
    assert bleu_clusters([]) == []
    assert bleu_clusters(["just one question"]) == [0]
    assert bleu_clusters(["", ""]) == [0, 1]  # empty strings never merge (BLEU 0)
    assert bleu_clusters([None, "a b c d e", None]) == [0, 1, 2]
    assert bleu_clusters(["a b c d e"] * 3) == [0, 0, 0]
    assert bleu_distances([]).shape == (0,) and bleu_distances(["x"]).shape == (0,)


def test_a_distance_equal_to_the_threshold_does_not_merge_like_sklearn():
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    # (0, 1) at exactly 0.5; (2, 3) at 0.25; 4 at 0.5 from both 2 and 3 (average 0.5 again).
    d = squareform(np.array([
        [0.0, 0.5, 1.0, 1.0, 1.0],
        [0.5, 0.0, 1.0, 1.0, 1.0],
        [1.0, 1.0, 0.0, 0.25, 0.5],
        [1.0, 1.0, 0.25, 0.0, 0.5],
        [1.0, 1.0, 0.5, 0.5, 0.0],
    ]))
    ours = _cut_like_sklearn(linkage(d, "average"), 5, 0.5)
    theirs = sklearn_cluster.AgglomerativeClustering(
        n_clusters=None, distance_threshold=0.5, metric="precomputed", linkage="average"
    ).fit_predict(squareform(d))
    assert ours == _first_seen_labels(theirs) == [0, 1, 2, 2, 3]


def test_cut_matches_sklearn_on_random_matrices_with_ties():
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(2, 40))
        d = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], size=n * (n - 1) // 2)
        for threshold in (0.3, 0.5, 0.75):
            theirs = sklearn_cluster.AgglomerativeClustering(
                n_clusters=None, distance_threshold=threshold, metric="precomputed", linkage="average"
            ).fit_predict(squareform(d))
            assert _cut_like_sklearn(linkage(d, "average"), n, threshold) == _first_seen_labels(theirs)
