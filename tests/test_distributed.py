"""Rank-awareness without processes: who does what, what state.json records, the launcher configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from visplay.distributed import SINGLE, OtherRankFailed, Ranks
from visplay.errors import UserError
from visplay.runfolder import RunFolder

ROOT = Path(__file__).parents[1]


class FakeRanks(Ranks):
    """A rank of a 2-process run whose collectives are played by the test (what rank 0 broadcasts)."""

    def __init__(self, rank: int, from_main=None):
        object.__setattr__(self, "rank", rank)
        object.__setattr__(self, "world", 2)
        object.__setattr__(self, "local_rank", rank)
        object.__setattr__(self, "from_main", from_main)
        object.__setattr__(self, "barriers", [])

    def barrier(self):
        self.barriers.append(True)

    def broadcast(self, obj):
        return obj if self.is_main else self.from_main


def test_round_robin_shares_cover_everything_once():
    shares = [Ranks(r, 3).mine(10) for r in range(3)]
    assert sorted(i for share in shares for i in share) == list(range(10))
    assert SINGLE.mine(2) == [0, 1] and SINGLE.merge({0: "a"}) == {0: "a"}


def test_work_on_main_reaches_every_rank_and_so_do_its_errors():
    assert FakeRanks(0).on_main(lambda: 5) == 5
    assert FakeRanks(1, from_main=(5, None)).on_main(lambda: pytest.fail("rank 1 must not work")) == 5
    with pytest.raises(UserError, match="already holds a run"):
        FakeRanks(1, from_main=(None, ("user", "runs/x already holds a run"))).on_main(lambda: None)
    with pytest.raises(OtherRankFailed, match="rank 0 failed: OSError: disk full"):
        FakeRanks(1, from_main=(None, ("other", "OSError: disk full"))).on_main(lambda: None)
    with pytest.raises(OSError):
        FakeRanks(0).on_main(lambda: (_ for _ in ()).throw(OSError("disk full")))


def test_stage_entries_record_processes_and_one_rank_writes(tmp_path):
    from visplay.evolve import _run_stage

    main, other = RunFolder(tmp_path), RunFolder(tmp_path, writer=False)
    ranks0, ranks1 = FakeRanks(0), FakeRanks(1, from_main=({"examples": 0}, None))
    # Rank 1 first: in a real run both ranks decide before rank 0 records the stage (then they meet).
    _run_stage(other, ranks1, 1, "curation", lambda: {"kept": 3})
    _run_stage(main, ranks0, 1, "curation", lambda: {"kept": 3})
    _run_stage(other, ranks1, 1, "reasoner", lambda: pytest.fail("rank 1 must not copy"), alone=True)
    _run_stage(main, ranks0, 1, "reasoner", lambda: {"examples": 0}, alone=True)
    other.log_metrics({"event": "x"})
    state = json.loads((tmp_path / "state.json").read_text())["iterations"]["1"]
    assert (state["curation"]["kept"], state["curation"]["processes"]) == (3, 2)
    assert state["reasoner"]["processes"] == 1  # rank 0 alone carried the checkpoint over
    assert not (tmp_path / "metrics.jsonl").exists()
    assert len(ranks0.barriers) == len(ranks1.barriers) == 2
    _run_stage(main, ranks0, 1, "curation", lambda: pytest.fail("done stages are not redone"))


@pytest.mark.parametrize("name, kind", [("deepspeed_zero2.yaml", "DEEPSPEED"), ("fsdp2.yaml", "FSDP"),
                                        ("cpu_2proc.yaml", "MULTI_GPU")])
def test_accelerate_configs_load_with_accelerates_loader(name, kind):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(ROOT / "configs" / "accelerate" / name))
    assert config.distributed_type == kind
    if kind == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == 2 and config.mixed_precision == "bf16"
    if kind == "FSDP":
        assert config.fsdp_config["fsdp_version"] == 2 and config.mixed_precision == "bf16"
    if kind == "MULTI_GPU":
        assert config.num_processes == 2 and not config.use_cpu
