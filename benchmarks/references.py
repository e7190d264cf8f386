"""Slow reference implementations: the authors' algorithms, kept out of the package.

The tests check the package's fast paths against them value for value, and the benchmarks time the fast
paths against them. None of them shares a cache with the code it checks.

- :func:`same_answer_uncached`: :func:`visplay.selfplay.answers.same_answer` with every cache bypassed (the
  authors' way: normalise and grade every pair);
- :func:`majority_vote_reference`: the authors' greedy pairwise vote;
- :func:`bleu_clusters_reference`: the authors' BLEU clustering (nltk + sklearn, the ``test`` extra).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from visplay.selfplay.answers import Vote, _finish, _keys_match, _math_equal_with, _parse_math, answer_key
from visplay.selfplay.diversity import _first_seen_labels


def same_answer_uncached(a: str | None, b: str | None) -> bool:
    """Always what :func:`visplay.selfplay.answers.same_answer` returns, recomputed from scratch."""
    return _keys_match(answer_key(a), answer_key(b), lambda x, y: _math_equal_with(x, y, _parse_math))


def majority_vote_reference(
    answers: Sequence[str | None],
    count_missing: bool = True,
    same: Callable[[str, str], bool] = same_answer_uncached,
) -> Vote:
    """The greedy pairwise vote (the authors' algorithm): each answer, in order, joins the first cluster
    whose representative ``same`` matches, else starts a new one.

    >>> majority_vote_reference(["\\\\frac{1}{2}", "0.5", None, "1/2", "3", "3"]).confidence
    0.5
    """
    groups: list[list] = []  # [representative index, count, indices]
    for index, answer in enumerate(answers):
        if answer_key(answer) is None:  # missing or blank: never a cluster
            continue
        for group in groups:
            if same(answer, answers[group[0]]):
                group[1] += 1
                group[2].append(index)
                break
        else:
            groups.append([index, 1, [index]])
    return _finish(answers, groups, count_missing)


def bleu_clusters_reference(questions: Sequence[str | None], threshold: float = 0.5) -> list[int]:
    """The authors' code, verbatim in substance (nltk + sklearn): labels of the BLEU clustering."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    from sklearn.cluster import AgglomerativeClustering

    n = len(questions)
    if n < 2:
        return list(range(n))
    sentences = [q or "" for q in questions]
    smoother = SmoothingFunction().method1
    dist = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            if i == j:
                score = 1.0
            else:
                score = sentence_bleu([sentences[j].split()], sentences[i].split(), smoothing_function=smoother)
            dist[i, j] = dist[j, i] = 1 - score
    clustering = AgglomerativeClustering(
        n_clusters=None, distance_threshold=threshold, metric="precomputed", linkage="average"
    )
    return _first_seen_labels(clustering.fit_predict(dist))
