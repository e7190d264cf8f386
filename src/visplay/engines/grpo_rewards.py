"""The whole-group reward adapter: a VisPlay ``reward_fn`` as a TRL reward function.

VisPlay's rewards need every completion of a group at once (the questioner's diversity penalty and its
per-question vote); TRL calls reward functions per process with that process's slice of the generation
batch. :class:`RewardAdapter` gathers, checks and scatters; :func:`component_means` is what it logs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

# reward_fn(completions, columns, group_ids) -> one dict per completion with "total" and any components.
RewardFn = Callable[[list[str], dict[str, list], list[int]], list[dict[str, float]]]

# Internal dataset column: the example's index. Every completion of one group carries the same value,
# which lets the reward adapter check that the groups it hands over are whole.
ROW_COLUMN = "_visplay_row"

_CONTROL_KWARGS = ("trainer_state", "log_extra", "log_metric", "environments", "prompts", "completions",
                   "completion_ids")


def _completion_text(completion: Any) -> str:
    """Text of one TRL completion: a string (plain prompts) or a list of chat messages (chat prompts).

    >>> _completion_text([{"role": "assistant", "content": "x = 1"}])
    'x = 1'
    >>> _completion_text([{"role": "assistant", "content": [{"type": "text", "text": "a"},
    ...                                                      {"type": "text", "text": "b"}]}])
    'ab'
    >>> _completion_text("plain")
    'plain'
    """
    if isinstance(completion, str):
        return completion
    parts = []
    for message in completion:
        content = message.get("content") if isinstance(message, dict) else message
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text") or "" for p in content if isinstance(p, dict))
    return "".join(parts)


class RewardAdapter:
    """Turns a VisPlay ``reward_fn`` into a TRL reward function.

    TRL calls reward functions per process with that process's slice of the generation batch, and one
    group of G completions may straddle two processes. VisPlay's rewards need whole groups (the
    questioner's diversity penalty, its per-question vote), so the adapter:

    1. decodes the completion token ids (the exact generated text, special tokens removed);
    2. on multi-process runs gathers texts and columns from every process with accelerate's
       ``gather_object`` (process order = the generation batch's order, so groups are consecutive runs of
       G completions), calls ``reward_fn`` once on the main process, broadcasts the results with
       ``broadcast_object_list`` and returns this process's slice (a reward function with a true
       ``collective`` attribute is called on EVERY process with the gathered batch, so that it can split
       its own work across them, e.g. the questioner's votes; process 0's results are still the ones used);
    3. checks that every group is whole (all its completions come from the same prompt row) and that the
       reward function returned one finite ``total`` per completion;
    4. logs the batch mean of every component as ``reward/<name>`` and the time spent inside
       ``reward_fn`` as ``time/reward_fn``.

    Single process (the CPU path) skips the gather and broadcast.
    """

    __name__ = "visplay"  # TRL logs this reward as rewards/visplay/*

    def __init__(self, reward_fn: RewardFn, group_size: int, tokenizer=None):
        self.reward_fn = reward_fn
        self.group_size = group_size
        self.tokenizer = tokenizer
        self.calls = 0
        self.seconds_in_fn = 0.0

    def _texts(self, completions: Sequence[Any], completion_ids: Sequence[Sequence[int]] | None) -> list[str]:
        if completion_ids is not None and self.tokenizer is not None:
            return self.tokenizer.batch_decode([list(ids) for ids in completion_ids], skip_special_tokens=True)
        return [_completion_text(c) for c in completions]

    def __call__(self, prompts=None, completions=None, completion_ids=None, **kwargs) -> list[float]:
        from accelerate import PartialState

        log_metric = kwargs.get("log_metric")
        columns = {k: list(v) for k, v in kwargs.items() if k not in _CONTROL_KWARGS}
        texts = self._texts(completions, completion_ids)
        state = PartialState()
        if state.num_processes > 1:
            from accelerate.utils import broadcast_object_list, gather_object

            sizes = gather_object([len(texts)])
            all_texts = gather_object(texts)
            all_columns = {k: gather_object(v) for k, v in sorted(columns.items())}
        else:
            sizes, all_texts, all_columns = [len(texts)], texts, columns
        group_ids = self._group_ids(all_texts, all_columns)
        user_columns = {k: v for k, v in all_columns.items() if k != ROW_COLUMN}

        results = None
        seconds = 0.0
        if state.is_main_process or getattr(self.reward_fn, "collective", False):
            t0 = time.perf_counter()
            results = self.reward_fn(list(all_texts), user_columns, group_ids)
            seconds = time.perf_counter() - t0
            self._check_results(results, len(all_texts))
        if state.num_processes > 1:
            box = [results]
            broadcast_object_list(box, from_process=0)
            results = box[0]
        self.calls += 1
        self.seconds_in_fn += seconds

        if log_metric is not None:
            for name, mean in component_means(results).items():
                log_metric(f"reward/{name}", mean)
            if state.is_main_process:
                log_metric("time/reward_fn", seconds)
        start = sum(sizes[: state.process_index])
        return [float(r["total"]) for r in results[start: start + len(texts)]]

    def _group_ids(self, texts: list[str], columns: dict[str, list]) -> list[int]:
        n, g = len(texts), self.group_size
        if n % g:
            raise RuntimeError(f"reward batch of {n} completions is not a whole number of groups of {g}")
        group_ids = [i // g for i in range(n)]
        rows = columns.get(ROW_COLUMN)
        if rows is not None:
            for start in range(0, n, g):
                if len(set(rows[start: start + g])) != 1:
                    raise RuntimeError(f"completions {start}..{start + g - 1} do not form one group "
                                       f"(example indices {rows[start: start + g]}); groups were split")
        return group_ids

    @staticmethod
    def _check_results(results: Any, n: int) -> None:
        if not isinstance(results, list) or len(results) != n:
            got = len(results) if isinstance(results, list) else type(results).__name__
            raise ValueError(f"reward_fn must return a list of {n} dicts (one per completion), got {got}")
        for i, r in enumerate(results):
            if not isinstance(r, dict) or "total" not in r:
                raise ValueError(f"reward_fn result {i} must be a dict with a 'total' key, got {r!r}")
            total = r["total"]
            if isinstance(total, bool) or not isinstance(total, (int, float)) or not math.isfinite(total):
                raise ValueError(f"reward_fn result {i}: 'total' must be a finite number, got {total!r}")


def component_means(results: list[dict[str, Any]]) -> dict[str, float]:
    """Batch mean of each reward component except ``total`` (None/NaN entries skipped; all-missing -> NaN).

    >>> component_means([{"total": 1, "validity": 1.0, "confidence": None},
    ...                  {"total": 0, "validity": 0.0, "confidence": 0.5}])
    {'validity': 0.5, 'confidence': 0.5}
    """
    sums: dict[str, list[float]] = {}
    for r in results:
        for k, v in r.items():
            if k == "total":
                continue
            bucket = sums.setdefault(k, [0.0, 0])
            if v is None:
                continue
            v = float(v)
            if math.isfinite(v):
                bucket[0] += v
                bucket[1] += 1
    return {k: (s / c if c else float("nan")) for k, (s, c) in sums.items()}
