"""Instruments: self-consistency statistics (hand-computed), diagnose / audit / study end to end on the toy world."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from visplay.analysis.consistency import (
    ItemDiagnosis,
    answer_kind,
    audit_questions,
    confidence_bin,
    diagnose_summary,
    headroom_summary,
    mean_sd,
    vote_reward_agreement,
)
from visplay.analysis.study import Arm, RunResult, format_study, parse_arms, parse_seeds, summarize_study
from visplay.errors import UserError
from visplay.selfplay.answers import same_answer


def test_headroom_by_hand():
    # greedy right on 1 of 4; samples right 2/4, 4/4, 0/4, 1/4 (mean 7/16); majority right on items 1, 2.
    items = [ItemDiagnosis("count", 0.0, [1, 1, 0, 0], 1.0, 0.5),
             ItemDiagnosis("count", 1.0, [1, 1, 1, 1], 1.0, 1.0),
             ItemDiagnosis("color", 0.0, [0, 0, 0, 0], 0.0, 0.75),
             ItemDiagnosis("color", 0.0, [1, 0, 0, 0], 0.0, 0.25)]
    s = headroom_summary(items)
    assert s["greedy"] == 0.25 and s["majority"] == 0.5
    assert s["sample_mean"] == pytest.approx(7 / 16)
    assert s["headroom"] == pytest.approx(0.25) and s["majority_minus_sample"] == pytest.approx(0.5 - 7 / 16)
    # pass@4: some sample right on items 1, 2 and 4 (item 3 never): what true-reward RL can reach at best
    assert s["pass_at_m"] == 0.75 and s["pass_minus_greedy"] == pytest.approx(0.5)
    assert s["bins"]["[.5, .75]"] == {"n": 2, "share": 0.5, "majority_accuracy": 0.5}
    assert s["bins"]["[.25, .5)"] == {"n": 1, "share": 0.25, "majority_accuracy": 0.0}
    assert s["bins"]["[0, .25)"]["n"] == 0 and s["bins"]["[0, .25)"]["majority_accuracy"] is None
    full = diagnose_summary(items)
    assert full["categories"]["count"]["headroom"] == pytest.approx(0.5)
    assert full["categories"]["color"]["greedy"] == 0.0 and full["categories"]["color"]["sample_mean"] == 0.125


def test_bins_kinds_and_spread():
    assert [confidence_bin(c) for c in (5 / 9, 6 / 9, 7 / 9, 0.24999)] == ["[.5, .75]", "[.5, .75]", "(.75, 1)",
                                                                        "[0, .25)"]
    assert [answer_kind(a) for a in ("no", "True", "12", "0.5", "blue", "circle", "")] == [
        "yes/no", "yes/no", "number", "number", "word", "word", None]
    mean, sd = mean_sd([0.55, 0.60, 0.65])
    assert mean == pytest.approx(0.6) and sd == pytest.approx(0.05)


def test_vote_reward_agreement_and_audit_by_hand():
    # silver "2" (5 of 9 votes), oracle "3": votes for 2 get pseudo 1 / true 0, votes for 3 get 0 / 1,
    # others 0 / 0. 5 + 3 disagree, 1 agrees.
    votes = ["2"] * 5 + ["3"] * 3 + ["4"]
    assert vote_reward_agreement(votes, "2", "3", same_answer) == (1, 9)
    rows = [
        {"question": "q1", "votes": votes, "silver_answer": "2", "confidence": 5 / 9, "kept": True, "oracle_answer": "3"},
        {"question": "q2", "votes": ["yes"] * 6 + ["no"] * 3, "silver_answer": "yes", "confidence": 6 / 9, "kept": True,
         "oracle_answer": "yes"},
        {"question": "q3", "votes": ["red"] * 9, "silver_answer": "red", "confidence": 1.0, "kept": False,
         "oracle_answer": "red"},
        {"question": "q4", "votes": ["1"] * 4 + [None] * 5, "silver_answer": "1", "confidence": 4 / 9, "kept": True,
         "oracle_answer": None},  # invalid for the oracle
        {"question": None, "votes": None, "silver_answer": None, "confidence": None, "kept": False,
         "oracle_answer": None},  # unparsed: not audited
    ]
    a = audit_questions(rows, same_answer)
    assert a["all"]["n"] == 4 and a["all"]["invalid_rate"] == 0.25
    assert a["all"]["label_accuracy"] == pytest.approx(2 / 3)  # q1 wrong, q2 and q3 right
    assert a["all"]["reward_accuracy"] == pytest.approx((1 + 9 + 9) / 27)
    assert a["kept"] == {"n": 3, "invalid_rate": pytest.approx(1 / 3), "label_accuracy": 0.5,
                         "reward_accuracy": pytest.approx(10 / 18)}
    assert a["bin [.5, .75]"]["n"] == 2 and a["bin 1"]["label_accuracy"] == 1.0
    assert a["kept/yes/no"]["label_accuracy"] == 1.0 and a["kept/number"]["label_accuracy"] == 0.0
    assert a["kept/word"]["n"] == 0 and a["kept/word"]["label_accuracy"] is None


def test_study_summary_by_hand():
    def run(arm, seed, accs, plas, kept, fam):
        rows = [{"iteration": 0, "toy_accuracy": accs[0]}] + [
            {"iteration": i + 1, "toy_accuracy": a, "pseudo_label_accuracy": p, "kept": k}
            for i, (a, p, k) in enumerate(zip(accs[1:], plas, kept))]
        return RunResult(arm, seed, rows, {0: {"count": 0.5}, 1: {"count": fam}}, reward_rise=fam / 10)

    results = [run("paper", 0, [0.6, 0.5], [0.4], [100], 0.4), run("paper", 1, [0.6, 0.7], [0.6], [120], 0.7),
               run("oracle-labels", 0, [0.6, 0.8], [0.4], [100], 0.9)]
    study = summarize_study([Arm("paper"), Arm("oracle-labels")], [0, 1], 1, results)
    paper = study["arms"][0]["iterations"][1]
    assert paper["toy_accuracy"][0] == pytest.approx(0.6) and paper["toy_accuracy"][1] == pytest.approx(0.1414, abs=1e-4)
    assert paper["delta"][0] == pytest.approx(0.0) and paper["kept"][0] == 110
    assert study["arms"][0]["family_delta"]["1"]["count"] == pytest.approx(0.05)
    text = format_study(study)
    assert re.search(r"paper\s+60\.0±0\.0\s+60\.0±14\.1\s+\+0\.0±14\.1", text), text
    assert re.search(r"oracle-labels\s+60\.0\s+80\.0\s+\+20\.0", text), text
    assert study["arms"][0]["reward_rise"][0] == pytest.approx(0.055)
    assert re.search(r"paper .*\+0\.05±0\.02$", text.splitlines()[3]), text


def test_reasoner_reward_rise_reads_the_runs_metrics(tmp_path):
    from visplay.analysis.study import reasoner_reward_rise

    lines = [{"event": "step", "stage": "iter01/reasoner", "reward_mean": v} for v in (0.2, 0.4, 0.6)]
    lines += [{"event": "step", "stage": "iter02/reasoner", "reward_mean": v} for v in (0.5, 0.5, 0.4)]
    lines += [{"event": "step", "stage": "iter01/questioner", "reward_mean": v} for v in (0.0, 1.0)]
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{\"cut\n")
    assert reasoner_reward_rise(path) == pytest.approx(((0.6 - 0.2) + (0.4 - 0.5)) / 2)
    assert reasoner_reward_rise(tmp_path / "absent.jsonl") is None


def test_study_refuses_a_bad_override_before_writing_anything(tmp_path):
    from visplay.analysis.study import run_study

    with pytest.raises(UserError, match="arm paper: config key questioner.votes"):
        run_study(tmp_path / "study", parse_arms("paper"), [0], overrides=["questioner.votes=0"], log=lambda m: None)
    assert not (tmp_path / "study").exists()


def test_arms_and_seeds_parsing():
    assert [a.name for a in parse_arms("paper,no-training")] == ["paper", "no-training"]
    assert parse_arms("", ["hot=paper questioner.answer_temperature=1.5"])[0].overrides == (
        "questioner.answer_temperature=1.5",)
    for bad in ("papr", "paper,paper"):
        with pytest.raises(UserError):
            parse_arms(bad)
    with pytest.raises(UserError, match="NAME=BASE"):
        parse_arms("", ["x=nonsense a=b"])
    with pytest.raises(UserError, match="exists already"):
        parse_arms(None, ["paper=no-band a=b"])
    with pytest.raises(UserError, match="defined but not named in --arms"):
        parse_arms("paper", ["hot=paper a=b"])
    # An arm may build on an earlier --arm.
    assert parse_arms(None, ["a=no-band x=1", "b=a y=2"])[1].overrides == ("curation.band=[0.0, 1.0]", "x=1", "y=2")
    assert parse_seeds("2,0") == [2, 0]
    for bad in ("a", "1,1", "", "-1"):
        with pytest.raises(UserError):
            parse_seeds(bad)


def test_study_command_runs_the_arms_it_names(tmp_path, monkeypatch, capsys):
    """``--arm`` defines arms that ``--arms`` knows by name; without ``--arms`` only the defined arms run."""
    import visplay.analysis.study as study
    from visplay.cli.main import main

    class Ran(Exception):
        pass

    def fake_run_study(out, arms, seeds, **kw):
        raise Ran([(a.name, a.overrides) for a in arms])

    monkeypatch.setattr(study, "run_study", fake_run_study)
    out = ["--seeds", "0", "--out", str(tmp_path / "study")]

    def ran(*argv: str) -> list:
        with pytest.raises(Ran) as info:
            main(["study", *argv, *out])
        return info.value.args[0]

    x = "x=oracle-labels curation.votes=4"
    assert ran("--arm", x, "--arms", "x") == [("x", ("reasoner.labels=oracle", "curation.votes=4"))]
    assert [name for name, _ in ran("--arm", x, "--arms", "x,paper")] == ["x", "paper"]
    assert [name for name, _ in ran("--arm", x)] == ["x"]
    assert [name for name, _ in ran()] == ["paper", "oracle-labels"]
    assert main(["study", "--arm", x, "--arms", "paper", *out]) == 2
    assert "x: defined but not named in --arms" in capsys.readouterr().err


# --- end to end ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from visplay.world.base import build_base
    from visplay.world.benchmark import write_benchmark

    root = tmp_path_factory.mktemp("toy")
    build_base(root / "base", rebuild=False, check=False, log=lambda m: None)
    write_benchmark(root / "bench.parquet", n=30, seed=0)
    return root


def test_diagnose_command_agrees_with_eval(toy, tmp_path, capsys):
    from visplay.cli.main import main

    out = tmp_path / "diag"
    args = ["diagnose", "--model", str(toy / "base"), "--benchmark", "toy", "--data", str(toy / "bench.parquet"),
            "--votes", "4", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "diagnose.json").read_text())
    overall = result["overall"]
    assert overall["n"] == 30 and result["settings"]["votes"] == 4
    assert sum(b["n"] for b in overall["bins"].values()) == 30
    assert overall["headroom"] == pytest.approx(overall["majority"] - overall["greedy"])
    assert set(result["categories"]) and all(c["n"] for c in result["categories"].values())
    assert "headroom" in printed and "maj@4" in printed and "pass@4" in printed
    assert overall["majority"] <= overall["pass_at_m"] and overall["sample_mean"] <= overall["pass_at_m"]
    # Greedy accuracy is exactly what `visplay eval` reports for the same model and items.
    assert main(["eval", "--model", str(toy / "base"), "--benchmark", "toy", "--data", str(toy / "bench.parquet"),
                 "--out", str(tmp_path / "eval")]) == 0
    summary = json.loads((tmp_path / "eval" / "toy" / "summary.json").read_text())
    assert overall["greedy"] == pytest.approx(summary["accuracy"] / 100)
    # Rerun: everything comes from the saved responses (same numbers, nothing regenerated).
    samples = (out / "samples.jsonl").read_text()
    assert main(args) == 0
    assert (out / "samples.jsonl").read_text() == samples
    assert json.loads((out / "diagnose.json").read_text())["overall"] == overall


def test_diagnose_bad_input_exits_2(toy, tmp_path, capsys):
    from visplay.cli.main import main

    base = ["diagnose", "--model", str(toy / "base"), "--benchmark", "toy", "--data", str(toy / "bench.parquet")]
    for extra in (["--votes", "1"], ["--temperature", "0"], ["--benchmark", "nope"]):
        assert main(base + extra) == 2
    assert main(["diagnose", "--model", str(tmp_path / "missing"), "--benchmark", "toy", "--data",
                 str(toy / "bench.parquet")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("visplay: error:") == 4


@pytest.mark.slow
def test_study_arms_end_to_end(tmp_path, capsys):
    """paper, oracle-labels and no-training for one tiny iteration: the table, the audit, the arms' contracts."""
    from visplay.analysis.audit import audit_run
    from visplay.analysis.study import parse_arms, run_study
    from visplay.cli.main import main

    grpo = "{steps: 1, prompts_per_step: 2, group_size: 4}"
    tiny = [f"questioner.grpo={grpo}", f"reasoner.grpo={grpo}", "questioner.votes=4", "curation.votes=4",
            "curation.images=8", "curation.samples_per_image=3", "curation.min_kept=1",
            "curation.on_too_few=continue", "curation.band=[0.0,1.0]"]
    study = run_study(tmp_path / "study", parse_arms("paper,oracle-labels,oracle-rlvr,no-training"), [0],
                      iterations=1, overrides=tiny, log=lambda m: None, n_images=16, benchmark_items=30)
    arms = {a["name"]: a for a in study["arms"]}
    # no-training copies the models: its accuracy change is 0 by construction (a check of the harness).
    assert arms["no-training"]["iterations"][1]["delta"][0] == 0.0
    assert arms["paper"]["iterations"][0]["toy_accuracy"][0] == arms["no-training"]["iterations"][0]["toy_accuracy"][0]
    root = tmp_path / "study"
    assert (root / "report.html").is_file() and "oracle-labels" in (root / "report.html").read_text()
    # oracle-labels: the reasoner trained on exactly the kept questions the oracle can answer, with its answers;
    # the config says in words that the oracle touches training.
    oracle_run = root / "oracle-labels" / "seed_0"
    table = pq.read_table(oracle_run / "iter_01" / "questions.parquet").to_pylist()
    answerable = [r for r in table if r["kept"] and r["oracle_answer"] is not None]
    grpo = json.loads((oracle_run / "iter_01" / "reasoner" / "visplay_grpo.json").read_text())
    assert grpo["examples"] == len(answerable) > 0
    assert "labels: oracle" in (oracle_run / "config.yaml").read_text()
    assert "the only settings under which the oracle touches training" in (oracle_run / "config.yaml").read_text()
    paper_grpo = json.loads((root / "paper" / "seed_0" / "iter_01" / "reasoner" / "visplay_grpo.json").read_text())
    assert paper_grpo["examples"] == sum(r["kept"] for r in pq.read_table(
        root / "paper" / "seed_0" / "iter_01" / "questions.parquet").to_pylist())
    # oracle-rlvr: no questioner stage, the world's questions about the pool's images with true answers, all
    # kept; the reasoner trained on them.
    from visplay.world.images import scene_of_image
    from visplay.world.oracle import oracle_answer

    rlvr_run = root / "oracle-rlvr" / "seed_0"
    rows = pq.read_table(rlvr_run / "iter_01" / "questions.parquet").to_pylist()
    assert len(rows) == 8 * 3 and all(r["kept"] for r in rows)
    for r in rows:
        truth = oracle_answer(r["question"], scene_of_image(r["image_id"], 0))
        assert truth.valid and r["silver_answer"] == r["oracle_answer"] == truth.answer
    assert len({r["question"] for r in rows}) > 8  # several different questions per image
    state = json.loads((rlvr_run / "state.json").read_text())
    assert state["iterations"]["1"]["questioner"]["carried_over"] is True
    assert json.loads((rlvr_run / "iter_01" / "reasoner" / "visplay_grpo.json").read_text())["examples"] == 24
    # The audit of a run folder, as a command.
    audit = audit_run(root / "paper" / "seed_0")
    assert set(audit) == {1} and audit[1]["all"]["n"] > 0
    assert main(["audit", str(root / "paper" / "seed_0")]) == 0
    assert "silver-label audit" in capsys.readouterr().out
    # A rerun resumes: nothing is retrained, the same table comes back.
    again = run_study(tmp_path / "study", parse_arms("paper,oracle-labels,oracle-rlvr,no-training"), [0],
                      iterations=1, overrides=tiny, log=lambda m: None, n_images=16, benchmark_items=30)
    def without_times(arms):
        return [{k: v for k, v in arm.items() if k != "seconds"} for arm in arms]

    assert without_times(again["arms"]) == without_times(study["arms"])


def _code_words(path: Path) -> list[str]:
    """Names, attributes, imports and string literals of a module, docstrings excluded."""
    import ast

    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    words = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            words.append(node.id)
        elif isinstance(node, ast.Attribute):
            words.append(node.attr)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            words += [a.name for a in node.names] + [getattr(node, "module", None) or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words.append(node.value)
    return words


def test_oracle_is_read_only_by_the_oracle_arms_and_analysis():
    """No module on the training path (stages' training code, engines, selfplay) mentions the oracle. The
    oracle reaches training in two places only: read_kept's labels='oracle' branch (the oracle-labels arm),
    and the world_questions hook (the oracle-rlvr arm), which evolve calls only under
    curation.source == 'world-oracle'."""
    import ast

    src = Path(__file__).resolve().parents[1] / "src" / "visplay"
    training_path = [src / "stages" / "questioner.py", src / "stages" / "reasoner.py", *(src / "engines").glob("*.py"),
                     *(src / "selfplay").glob("*.py"), src / "data" / "images.py"]
    for path in training_path:
        assert not [w for w in _code_words(path) if "oracle" in w.lower()], path
        assert "world_questions" not in _code_words(path), path
    curation = (src / "stages" / "curation.py").read_text()
    reads = [line for line in curation.splitlines() if "oracle_answer" in line and "read_table" in line]
    assert len(reads) == 1 and "columns + [\"oracle_answer\"]" in reads[0]

    # Every use of hooks.world_questions in evolve sits under an `if` that tests for "world-oracle".
    tree = ast.parse((src / "evolve.py").read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    uses = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "world_questions"
            and isinstance(n.value, ast.Name) and n.value.id == "hooks"]
    assert len(uses) >= 2  # the missing-hook check and the stage call
    for use in uses:
        node, guarded = use, False
        while node in parents:
            node = parents[node]
            if isinstance(node, ast.If) and "world-oracle" in ast.unparse(node.test):
                guarded = True
                break
        assert guarded, f"evolve.py line {use.lineno}: hooks.world_questions used outside curation.source checks"
    # The world's true completions (the oracle-sft arm) are read by one stage, called only under
    # reasoner.objective == "sft", which the config allows only with curation.source=world-oracle.
    for path in training_path + [src / "stages" / "curation.py", src / "evolve.py"]:
        assert "true_completion" not in _code_words(path), path
    sft_calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                 and n.func.id == "run_world_sft_stage"]
    assert len(sft_calls) == 1
    node, guarded = sft_calls[0], False
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "objective == 'sft'" in ast.unparse(node.test):
            guarded = True
            break
    assert guarded, "evolve.py: run_world_sft_stage called outside a reasoner.objective == 'sft' check"
    # Only the oracle arms set the source, and only oracle-sft the objective.
    from visplay.analysis.study import ARMS

    assert [a.name for a in ARMS.values() if "curation.source=world-oracle" in a.overrides] == ["oracle-rlvr",
                                                                                                 "oracle-sft"]
    assert [a.name for a in ARMS.values() if "reasoner.objective=sft" in a.overrides] == ["oracle-sft"]
