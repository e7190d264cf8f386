"""Which process am I, and the few collectives the loop needs, for runs started by torchrun or accelerate.

A multi-process launcher (``torchrun --nproc_per_node N``, ``accelerate launch --num_processes N ...``)
starts N copies of ``visplay evolve`` with ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` in their
environment. :func:`init_from_env` joins them into one process group through accelerate's ``PartialState``
(NCCL on GPUs, gloo on CPU), so that TRL's trainer later finds and reuses the same group. Without such a
launcher, or with one process, everything here is a no-op and :data:`SINGLE` answers.

The division of labour in a multi-process run (``visplay.evolve``): rank 0 prepares and writes the run
folder, ``state.json``, ``metrics.jsonl`` and the parquet files; every rank trains (TRL / accelerate
split the batch); the frozen models' sampling (votes, curation) is split across ranks and gathered
(:class:`visplay.engines.sampler.HFSampler` gives each rank whole generation batches); all ranks wait
for each other at stage boundaries.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from visplay.errors import UserError

T = TypeVar("T")

# Rank 0 may work alone for a long time while the others wait at a barrier (benchmark evaluation after an
# iteration, writing a large parquet file); the default 30-minute collective timeout would kill the run.
BARRIER_TIMEOUT = datetime.timedelta(hours=12)


class OtherRankFailed(RuntimeError):
    """Rank 0 failed in work it did alone; the other ranks stop with this instead of waiting forever."""


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run: ``rank`` of ``world`` processes (``world == 1``: no collectives)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mine(self, count: int) -> list[int]:
        """The indices of ``count`` work items this rank does: round robin.

        >>> Ranks(1, 3).mine(7), Ranks(0, 1).mine(3)
        ([1, 4], [0, 1, 2])
        """
        return list(range(self.rank, count, self.world))

    # --- collectives (each is a no-op with one process) ---------------------------------------------
    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank."""
        if self.world == 1:
            return obj
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather(self, obj: T) -> list[T]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def merge(self, partial: dict[int, T]) -> dict[int, T]:
        """Union of every rank's ``{index: result}`` (the indices of different ranks never overlap)."""
        merged: dict[int, T] = {}
        for part in self.all_gather(partial):
            merged.update(part)
        return merged

    def on_main(self, work: Callable[[], T]) -> T:
        """Run ``work`` on rank 0 only and hand its result to every rank.

        A :class:`UserError` on rank 0 is raised on every rank (each exits 2 with the same message); any
        other failure is re-raised on rank 0 and stops the others with :class:`OtherRankFailed`, instead
        of leaving them at the next collective.
        """
        if self.world == 1:
            return work()
        result, failure, error = None, None, None
        if self.is_main:
            try:
                result = work()
            except UserError as exc:
                failure, error = ("user", str(exc)), exc
            except BaseException as exc:  # noqa: BLE001 - reported to the other ranks, then re-raised
                failure, error = ("other", f"{type(exc).__name__}: {exc}"), exc
        result, failure = self.broadcast((result, failure))
        if failure is not None:
            if error is not None:
                raise error
            kind, message = failure
            if kind == "user":
                raise UserError(message)
            raise OtherRankFailed(f"rank 0 failed: {message}")
        return result


SINGLE = Ranks()
_current: Ranks = SINGLE


def launched_world_size() -> int:
    """``WORLD_SIZE`` set by a multi-process launcher (1 when absent)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def init_from_env() -> Ranks:
    """Join the launcher's process group (once) and return this process's :class:`Ranks`.

    Builds accelerate's ``PartialState`` first, with ``cpu=True`` on machines without CUDA: without it
    accelerate treats a torchrun-started CPU process as a single process (its CPU path needs the flag),
    and every rank would believe it is alone. The process group is created once here, with a long
    timeout (:data:`BARRIER_TIMEOUT`); the trainer's own accelerate state later joins the same group.
    """
    global _current
    if launched_world_size() == 1:
        return _current
    if _current.world > 1:
        return _current
    import torch
    from accelerate import PartialState

    if not torch.cuda.is_available():
        # transformers' TrainingArguments rebuilds accelerate's state from scratch and asks for the CPU path
        # only when this variable says so; without it every rank would train alone.
        os.environ["ACCELERATE_USE_CPU"] = "true"
    state = PartialState(cpu=not torch.cuda.is_available(), timeout=BARRIER_TIMEOUT)
    if state.num_processes != launched_world_size():
        raise UserError(f"the launcher started {launched_world_size()} processes but accelerate joined "
                        f"{state.num_processes}; check the launcher's flags (see README, Scaling)")
    _current = Ranks(rank=state.process_index, world=state.num_processes, local_rank=state.local_process_index)
    if torch.cuda.is_available():
        # "cuda" then means this rank's GPU for every model the stages load (the frozen models included).
        torch.cuda.set_device(_current.local_rank)
    return _current


def current() -> Ranks:
    """This process's :class:`Ranks` (:data:`SINGLE` unless :func:`init_from_env` joined a group)."""
    return _current


def is_main_process() -> bool:
    """True on rank 0, or when no launcher started several processes (usable before :func:`init_from_env`)."""
    return os.environ.get("RANK", "0") == "0"
