"""The TRL shim (visplay.engines.grpo_trainer): every private TRL name it relies on still exists with the
expected parameters, and the timing wrappers pass results through while recording one metric each."""

from __future__ import annotations

import inspect
from collections import defaultdict
from types import SimpleNamespace

import pytest

from visplay.engines.grpo_trainer import TRL_VERSION, WRAPPED, check_reference, trainer_class


def test_installed_trl_is_the_pinned_one():
    import trl

    assert trl.__version__ == TRL_VERSION, "the overrides in grpo_trainer.py were written against TRL " + TRL_VERSION


@pytest.mark.parametrize("name", sorted(WRAPPED))
def test_wrapped_private_methods_exist_with_the_same_parameters(name):
    from trl import GRPOTrainer

    method = getattr(GRPOTrainer, name, None)
    assert callable(method), f"GRPOTrainer.{name} is gone"
    params = tuple(inspect.signature(method).parameters)[1:]  # after self
    assert params == WRAPPED[name]
    assert tuple(inspect.signature(getattr(trainer_class(), name)).parameters)[1:] == WRAPPED[name]


def test_metrics_attribute_is_the_one_trl_logs():
    from trl import GRPOTrainer

    assert "self._metrics" in inspect.getsource(GRPOTrainer.__init__)


@pytest.mark.parametrize("name, key, args", [
    ("_generate", "time/generate", (["p"],)),
    ("_calculate_rewards", "time/reward", ([{}], ["p"], ["c"], [[1]])),
    ("_generate_and_score_completions", "time/rollout", ([{}],)),
])
def test_timing_wrappers_record_one_value_and_pass_the_result_through(monkeypatch, name, key, args):
    from trl import GRPOTrainer

    seen = []
    monkeypatch.setattr(GRPOTrainer, name, lambda self, *a: seen.append(a) or "result")
    cls = trainer_class()
    trainer = cls.__new__(cls)  # no model loading: only what the wrappers touch
    trainer._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    trainer.model = SimpleNamespace(training=True)
    assert getattr(trainer, name)(*args) == "result" and seen == [args]
    assert len(trainer._metrics["train"][key]) == 1 and trainer._metrics["train"][key][0] >= 0
    trainer.model.training = False
    getattr(trainer, name)(*args)
    assert len(trainer._metrics["eval"][key]) == 1


def test_reference_must_be_the_starting_checkpoint(tmp_path):
    def trainer(path):
        return SimpleNamespace(ref_model=SimpleNamespace(config=SimpleNamespace(_name_or_path=path)))

    check_reference(trainer(str(tmp_path)), tmp_path)
    with pytest.raises(RuntimeError, match="KL reference was loaded from"):
        check_reference(trainer(str(tmp_path / "other")), tmp_path)
    with pytest.raises(RuntimeError, match="None"):
        check_reference(SimpleNamespace(ref_model=None), tmp_path)
