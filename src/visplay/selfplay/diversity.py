"""BLEU clustering of questions: the partition behind the diversity penalty, exact and vectorised.

The authors' reference (R-Zero / VisPlay ``train_examples/reward_function/cot_val.py``): for i < j the distance is
``1 - sentence_bleu([q_j.split()], q_i.split(), smoothing_function=SmoothingFunction().method1)``
(nltk, 4-gram BLEU, uniform weights), mirrored; then sklearn ``AgglomerativeClustering(n_clusters=None,
distance_threshold=threshold, metric="precomputed", linkage="average")``. That is ~n^2/2 Python BLEU
calls: minutes of CPU for a 4096-question rollout batch.

Here the same numbers come from whole-batch array operations:

1. every n-gram occurrence gets a column: the k-th occurrence of n-gram g in a question is column (g, k),
   so for the 0/1 matrix B, ``(B @ B.T)[i, j] = sum_g min(count_i(g), count_j(g))``, nltk's clipped match
   count (symmetric; only the denominator and the brevity penalty depend on which side is the hypothesis).
   Columns shared by many questions go through a dense BLAS product, the rest through a sparse one;
   columns seen in one question only are dropped (they never match anything else). For small batches
   and for many small groups at once (:func:`bleu_clusters_by_group`, the paper's per-image scope) only
   the listed pairs are scored, as row-wise products of the sparse matrices.
2. nltk's arithmetic is reproduced step for step: each ``0.25 * log(p_n)`` comes from a table computed
   with :mod:`math` (including method1's ``0.1 / denominator`` for zero matches, a denominator of 1 for
   hypotheses shorter than n, and BLEU = 0 when no unigram matches, e.g. an empty question),
   ``math.fsum`` is emulated with error-free two-sum transforms, ``math.exp`` is ``np.exp`` where the two
   agree bit for bit (checked once; else math.exp on the distinct values), and the brevity penalty
   ``exp(1 - r / c)`` comes from a table over the lengths present. The most common case (no shared
   trigram) is a table lookup over (length, unigram matches, bigram matches). The condensed distances
   are bit-identical to nltk's (``tests/test_selfplay_diversity.py`` compares them value by value).
3. The tree is the one sklearn builds (it calls ``scipy.cluster.hierarchy.linkage(..., "average")`` on the
   same condensed vector), cut as sklearn cuts it: with k merges at height ``>= threshold``, the first
   ``n - 1 - k`` merges are applied. So two questions at distance exactly ``threshold`` are NOT merged.

Where this departs from the authors' code (the one place that says so): labels are numbered in order of
first appearance (sklearn's numbering is arbitrary; the partition is the same); n = 0 and n = 1 are
answered ([] and [0]) where sklearn raises; ``None`` (an unparsed question) is treated as the empty
string, as the authors' reward code does (``{"question": ""}``), so it is always a singleton for
thresholds <= 1 (the empty hypothesis has BLEU 0, distance 1, even to another empty string).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from functools import lru_cache

import numpy as np

__all__ = [
    "bleu_clusters",
    "bleu_clusters_by_group",
    "bleu_distances",
]

_ORDERS = 4
_WEIGHT = 0.25  # nltk's default uniform 4-gram weights
_EPSILON = 0.1  # SmoothingFunction().method1's epsilon


# ----------------------------------------------------------------------------------------------------
# n-gram occurrence matrices
# ----------------------------------------------------------------------------------------------------


def _tokenise(questions: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whitespace tokens as integer ids: (token ids, sentence of each token, length of each sentence)."""
    split = [(question or "").split() for question in questions]
    lengths = np.fromiter((len(tokens) for tokens in split), dtype=np.int64, count=len(split))
    every = [token for tokens in split for token in tokens]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(every))}
    token_ids = np.fromiter(map(vocab.__getitem__, every), dtype=np.int64, count=len(every))
    sentence = np.repeat(np.arange(len(questions), dtype=np.int64), lengths)
    return token_ids, sentence, lengths


def _occurrence_columns(token_ids, sentence, lengths):
    """Yield, for n = 1..4, (rows, columns) of the 0/1 occurrence matrix of n-grams (see module doc)."""
    n_tokens = len(token_ids)
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    position = np.arange(n_tokens, dtype=np.int64) - starts[sentence] if n_tokens else np.zeros(0, np.int64)
    remaining = lengths[sentence] - position if n_tokens else np.zeros(0, np.int64)  # tokens from here on
    gram = token_ids.copy()  # id of the n-gram starting at each token (valid where remaining >= n)
    vocab_size = int(token_ids.max()) + 1 if n_tokens else 1
    for n in range(1, _ORDERS + 1):
        if n > 1:
            valid_next = remaining >= n
            code = np.full(n_tokens, -1, dtype=np.int64)
            nxt = np.flatnonzero(valid_next)
            code[nxt] = gram[nxt] * vocab_size + token_ids[nxt + n - 1]
            _, inverse = np.unique(code[nxt], return_inverse=True)
            gram = np.full(n_tokens, -1, dtype=np.int64)
            gram[nxt] = inverse
        where = np.flatnonzero(remaining >= n)
        rows, grams = sentence[where], gram[where]
        if len(where) == 0:
            yield rows, grams
            continue
        # k-th occurrence of the same n-gram within a sentence -> its own column (g, k).
        order = np.lexsort((grams, rows))
        rows, grams = rows[order], grams[order]
        new_group = np.ones(len(rows), dtype=bool)
        new_group[1:] = (rows[1:] != rows[:-1]) | (grams[1:] != grams[:-1])
        group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(rows)), 0))
        occurrence = np.arange(len(rows)) - group_start
        _, columns = np.unique(grams * (int(occurrence.max()) + 1) + occurrence, return_inverse=True)
        yield rows, columns.astype(np.int64)


class _MatchCounts:
    """``M[i, j] = sum_g min(count_i(g), count_j(g))`` for one n-gram order, served by blocks of rows.

    Columns shared by many questions go through a dense float32 product (exact for integer counts), the
    others through one sparse product kept as upper-triangle (i < j) coordinates sorted by row.
    """

    def __init__(self, rows: np.ndarray, columns: np.ndarray, n: int):
        from scipy import sparse

        self.n = n
        self.dense = np.zeros((n, 0), dtype=np.float32)
        self.sparse_rows = self.sparse_cols = np.zeros(0, dtype=np.int64)
        self.sparse_data = np.zeros(0, dtype=np.float32)
        self.row_start = np.zeros(n + 1, dtype=np.int64)
        if len(columns) == 0:
            return
        df = np.bincount(columns)
        keep = df[columns] >= 2  # a column in one question only matches nothing else (diagonal unused)
        rows, columns = rows[keep], columns[keep]
        df = df[columns]
        # A column shared by d questions costs ~d^2 scattered adds sparse, ~n^2 multiply-adds dense.
        is_dense = df >= max(8, n // 24)
        if is_dense.any():
            _, dense_cols = np.unique(columns[is_dense], return_inverse=True)
            self.dense = np.zeros((n, int(dense_cols.max()) + 1), dtype=np.float32)
            self.dense[rows[is_dense], dense_cols] = 1.0
        if (~is_dense).any():
            _, sparse_cols = np.unique(columns[~is_dense], return_inverse=True)
            ones = np.ones(len(sparse_cols), dtype=np.float32)
            occ = sparse.csr_matrix((ones, (rows[~is_dense], sparse_cols)), shape=(n, int(sparse_cols.max()) + 1))
            product = sparse.triu(occ @ occ.T, k=1).tocsr()
            product.sort_indices()
            self.row_start = product.indptr.astype(np.int64)
            self.sparse_rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(self.row_start))
            self.sparse_cols = product.indices.astype(np.int64)
            self.sparse_data = product.data.astype(np.float32)

    def block(self, r0: int, r1: int) -> np.ndarray:
        """Rows r0..r1-1 against columns r0+1..n-1 (entries with j <= i are not filled correctly)."""
        if self.dense.shape[1]:
            out = self.dense[r0:r1] @ self.dense[r0 + 1 :].T
        else:
            out = np.zeros((r1 - r0, self.n - r0 - 1), dtype=np.float32)
        k0, k1 = self.row_start[r0], self.row_start[r1]
        if k1 > k0:
            out[self.sparse_rows[k0:k1] - r0, self.sparse_cols[k0:k1] - (r0 + 1)] += self.sparse_data[k0:k1]
        return out


# ----------------------------------------------------------------------------------------------------
# nltk's arithmetic, vectorised
# ----------------------------------------------------------------------------------------------------


def _log_term_tables(lengths: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """For each order: a flat table of ``0.25 * log(p_n)`` and each hypothesis length's offset in it.

    Exactly nltk's values: p_n = Fraction(matches, denominator) -> float; zero matches -> method1's
    ``(0 + 0.1) / denominator``; denominator = max(1, len - n + 1).
    """
    distinct = np.unique(lengths)
    tables, offsets = [], []
    for n in range(1, _ORDERS + 1):
        values: list[float] = []
        offset = np.zeros(int(distinct.max()) + 1, dtype=np.int64)
        for length in distinct.tolist():
            offset[length] = len(values)
            denominator = max(1, length - n + 1)
            values.append(_WEIGHT * math.log((0 + _EPSILON) / denominator))
            values.extend(_WEIGHT * math.log(k / denominator) for k in range(1, max(0, length - n + 1) + 1))
        tables.append(np.asarray(values, dtype=np.float64))
        offsets.append(offset)
    return tables, offsets


def _brevity_table(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Brevity penalty for every (hypothesis length, reference length) pair present, by length rank."""
    distinct = np.unique(lengths).tolist()
    rank = np.zeros(int(max(distinct)) + 1, dtype=np.int64)
    rank[distinct] = np.arange(len(distinct))
    table = np.empty((len(distinct), len(distinct)), dtype=np.float64)
    for a, hyp in enumerate(distinct):
        for b, ref in enumerate(distinct):
            # nltk.translate.bleu_score.brevity_penalty(closest_ref_len=ref, hyp_len=hyp)
            table[a, b] = 1.0 if hyp > ref else (0.0 if hyp == 0 else math.exp(1 - ref / hyp))
    return table, rank


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knuth's error-free sum: a + b == s + e exactly."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _fsum4(t1, t2, t3, t4) -> np.ndarray:
    """``math.fsum([t1, t2, t3, t4])`` elementwise: the exact sum, rounded once."""
    s, e1 = _two_sum(t1, t2)
    s, e2 = _two_sum(s, t3)
    s, e3 = _two_sum(s, t4)
    errors, e4 = _two_sum(e1, e2)
    errors, e5 = _two_sum(errors, e3)
    head, tail = _two_sum(s, errors)
    # The exact sum is head + tail + rest with fl(head + tail) == head. As in CPython's fsum, the only
    # case where the rounding is not ``head``: tail is exactly half an ulp and rest pushes past the tie.
    rest = e4 + e5
    doubled = tail * 2.0
    bumped = head + doubled
    past_tie = (np.sign(rest) == np.sign(tail)) & (rest != 0.0) & ((bumped - head) == doubled)
    return np.where(past_tie, bumped, head)


@lru_cache(maxsize=1)
def _numpy_exp_is_libm() -> bool:
    """Whether ``np.exp`` returns ``math.exp``'s bits (numpy's own SIMD exp, used on some CPUs, may not)."""
    probe = np.random.default_rng(0).uniform(-40.0, 0.0, 20_000)
    return bool(np.array_equal(np.exp(probe), np.fromiter(map(math.exp, probe.tolist()), np.float64, len(probe))))


def _exp(x: np.ndarray) -> np.ndarray:
    """``math.exp`` elementwise, bit for bit: np.exp where it agrees, else math.exp on distinct values."""
    if _numpy_exp_is_libm():
        return np.exp(x)
    distinct, inverse = np.unique(x, return_inverse=True)
    return np.fromiter(map(math.exp, distinct.tolist()), np.float64, len(distinct))[inverse].reshape(x.shape)


def _bleu_core(terms: list[np.ndarray]) -> np.ndarray:
    """``math.exp(math.fsum(0.25 * log p_n))``: nltk's BLEU before the brevity penalty."""
    return _exp(_fsum4(*terms))


_SMALL = 48  # up to this many questions, list the pairs instead of building the whole-batch products
_TABLE_MAX_LENGTH = 64  # (L, n1, n2) tables for hypotheses up to this many tokens; longer ones go the long way


def _short_table(tables, offsets, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BLEU before brevity for every (hypothesis length L, unigram matches, bigram matches) with no
    trigram match, the common case (most pairs share a few words, few share three in a row).

    Computed with the very operations of the general path, so the two paths agree bit for bit; zero
    unigram matches give 0 (nltk's early return). Returns the flat table and each length's offset.
    """
    short = [int(length) for length in np.unique(lengths) if length <= _TABLE_MAX_LENGTH]
    offset = np.zeros(int(lengths.max()) + 1, dtype=np.int64)
    pieces, size = [], 1  # entry 0: a dummy for long rows (always recomputed)
    for length in short:
        offset[length] = size
        n1, n2 = np.divmod(np.arange((length + 1) ** 2, dtype=np.int64), length + 1)
        zero = np.zeros_like(n1)
        terms = [
            tables[o][offsets[o][length] + np.minimum(k, max(0, length - o))]
            for o, k in enumerate((n1, n2, zero, zero))
        ]
        values = _bleu_core(terms)
        values[n1 == 0] = 0.0
        pieces.append(values)
        size += len(values)
    return np.concatenate([np.zeros(1)] + pieces), offset


def _pair_distances(questions: Sequence[str | None], hyp: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``1 - BLEU(hyp=q[hyp[k]], ref=[q[ref[k]]])`` for listed pairs only (many small groups at once).

    Same arithmetic as :func:`bleu_distances`; the match counts are row-wise products of the sparse
    occurrence matrices instead of a whole matrix product.
    """
    from scipy import sparse

    n = len(questions)
    if len(hyp) == 0:
        return np.zeros(0, dtype=np.float64)
    token_ids, sentence, lengths = _tokenise(questions)
    counts = []
    for rows, cols in _occurrence_columns(token_ids, sentence, lengths):
        width = int(cols.max()) + 1 if len(cols) else 1
        occ = sparse.csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(n, width))
        counts.append(np.asarray(occ[hyp].multiply(occ[ref]).sum(axis=1)).ravel().astype(np.int64))
    tables, offsets = _log_term_tables(lengths)
    brevity, rank = _brevity_table(lengths)
    hyp_length = lengths[hyp]
    core = _bleu_core([tables[o][offsets[o][hyp_length] + counts[o]] for o in range(_ORDERS)])
    core[counts[0] == 0] = 0.0  # nltk returns 0 when no unigram matches
    return 1.0 - core * brevity[rank[hyp_length], rank[lengths[ref]]]


def bleu_distances(questions: Sequence[str | None], block_rows: int = 16, super_rows: int = 512) -> np.ndarray:
    """The authors' condensed distance vector: entry (i, j), i < j, is ``1 - BLEU(hyp=q_i, ref=[q_j])``.

    Same order as ``scipy.spatial.distance.squareform``; bit-identical to nltk's values.

    >>> d = bleu_distances(["how many red cubes are there ?", "how many red cubes are there ?", "", "yes"])
    >>> d.tolist()   # duplicates: 0; the empty string: 1 to everything; "yes" vs a long question: 1
    [0.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    n = len(questions)
    condensed = np.empty(n * (n - 1) // 2, dtype=np.float64)
    if n < 2:
        return condensed
    if n <= _SMALL:
        hyp, ref = np.triu_indices(n, k=1)
        return _pair_distances(questions, hyp, ref)
    token_ids, sentence, lengths = _tokenise(questions)
    matches = [_MatchCounts(rows, cols, n) for rows, cols in _occurrence_columns(token_ids, sentence, lengths)]
    tables, offsets = _log_term_tables(lengths)
    short, short_offset = _short_table(tables, offsets, lengths)
    brevity, rank = _brevity_table(lengths)
    length_rank = rank[lengths]
    term_offset = [offset[lengths] for offset in offsets]
    short_base = short_offset[lengths].astype(np.int32)
    short_stride = (lengths + 1).astype(np.int32)
    is_long = lengths > _TABLE_MAX_LENGTH
    # Large row bands for the matrix products (BLAS likes them), small row blocks for the elementwise
    # arithmetic (the temporaries stay in cache).
    for s0 in range(0, n - 1, super_rows):
        s1 = min(n - 1, s0 + super_rows)
        band = [m.block(s0, s1) for m in matches]  # rows s0..s1-1, columns s0+1..n-1
        for r0 in range(s0, s1, block_rows):
            r1 = min(s1, r0 + block_rows)
            rows, cols = slice(r0 - s0, r1 - s0), slice(r0 - s0, None)  # columns r0+1..n-1
            counts = [b[rows, cols].astype(np.int32) for b in band]
            index = counts[0] * short_stride[r0:r1, None]
            index += counts[1]
            index += short_base[r0:r1, None]
            long_rows = is_long[r0:r1]
            if long_rows.any():
                index[long_rows] = 0  # the dummy entry; these rows are all recomputed below
            bleu = short[index]
            general = (counts[2] > 0) | is_long[r0:r1, None]
            where = np.flatnonzero(general)
            if len(where):
                row_of = np.repeat(np.arange(r0, r1), general.sum(axis=1))
                terms = [tables[o][term_offset[o][row_of] + counts[o].ravel()[where]] for o in range(_ORDERS)]
                core = _bleu_core(terms)
                core[counts[0].ravel()[where] == 0] = 0.0  # nltk returns 0 when no unigram matches
                bleu.ravel()[where] = core
            bleu *= brevity[length_rank[r0:r1, None], length_rank[None, r0 + 1 :]]
            distance = 1.0 - bleu
            for i in range(r0, r1):
                start = i * n - i * (i + 1) // 2
                condensed[start : start + n - 1 - i] = distance[i - r0, i - r0 :]
    return condensed


# ----------------------------------------------------------------------------------------------------
# clustering
# ----------------------------------------------------------------------------------------------------


def _first_seen_labels(labels: Sequence[int]) -> list[int]:
    """Renumber cluster labels 0, 1, 2, ... in order of first appearance."""
    mapping: dict[int, int] = {}
    return [mapping.setdefault(int(label), len(mapping)) for label in labels]


def _cut_like_sklearn(linkage_matrix: np.ndarray, n: int, threshold: float) -> list[int]:
    """sklearn's cut: k = #merges at height >= threshold; apply the first n - 1 - k merges."""
    applied = n - 1 - int(np.count_nonzero(linkage_matrix[:, 2] >= threshold))
    parent = list(range(2 * n - 1))  # union-find over leaves and merge nodes

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for step in range(applied):
        a, b = int(linkage_matrix[step, 0]), int(linkage_matrix[step, 1])
        parent[root(a)] = n + step
        parent[root(b)] = n + step
    return _first_seen_labels(root(leaf) for leaf in range(n))


def bleu_clusters(questions: Sequence[str | None], threshold: float = 0.5) -> list[int]:
    """Cluster labels (numbered by first appearance) with exactly the authors' BLEU partition.

    >>> bleu_clusters(["What color is the large cube on the left ?",
    ...                "What color is the large cube on the right ?",
    ...                "How many spheres are behind the red cylinder ?",
    ...                "What color is the large cube on the left ?"])
    [0, 0, 1, 0]
    >>> bleu_clusters([]), bleu_clusters(["only one"]), bleu_clusters(["", "", None])
    ([], [0], [0, 1, 2])
    """
    from scipy.cluster.hierarchy import linkage

    n = len(questions)
    if n < 2:
        return list(range(n))
    condensed = bleu_distances(questions)
    return _cut_like_sklearn(linkage(condensed, method="average"), n, threshold)


def bleu_clusters_by_group(
    questions: Sequence[str | None], group_ids: Sequence[Hashable], threshold: float = 0.5
) -> list[int]:
    """:func:`bleu_clusters` run separately inside each group (the G questions of one image).

    Labels are numbered by first appearance within each group. All within-group pairs are scored in one
    vectorised pass, so 512 groups of 8 cost about as much as one group.

    >>> bleu_clusters_by_group(["a b c d e", "x y z w v", "a b c d e", "a b c d e"], ["img1", "img1", "img2", "img2"])
    [0, 1, 0, 0]
    """
    from scipy.cluster.hierarchy import linkage

    if len(group_ids) != len(questions):
        raise ValueError("one group id per question")
    members: dict[Hashable, list[int]] = {}
    for index, group in enumerate(group_ids):
        members.setdefault(group, []).append(index)
    hyp_parts, ref_parts = [], []
    for indices in members.values():
        if len(indices) > 1:
            i, j = np.triu_indices(len(indices), k=1)
            hyp_parts.append(np.asarray(indices)[i])
            ref_parts.append(np.asarray(indices)[j])
    hyp = np.concatenate(hyp_parts) if hyp_parts else np.zeros(0, dtype=np.int64)
    ref = np.concatenate(ref_parts) if ref_parts else np.zeros(0, dtype=np.int64)
    distances = _pair_distances(questions, hyp, ref)
    labels = [0] * len(questions)
    start = 0
    for indices in members.values():
        size = len(indices)
        if size > 1:
            pairs = size * (size - 1) // 2
            local = _cut_like_sklearn(linkage(distances[start : start + pairs], method="average"), size, threshold)
            start += pairs
            for index, label in zip(indices, local):
                labels[index] = label
    return labels

