"""``visplay audit RUN``: the silver-label audit of a toy-world run (label and reward accuracy against the
oracle, per iteration, confidence bin and answer kind)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "audit",
        help="silver-label audit of a toy-world run: how often the vote's answer and each vote's reward were right",
        description="Reads every iter_XX/questions.parquet of a run that has oracle answers (toy-world runs: "
        "visplay demo / study) and prints, per iteration, confidence bin and answer kind: label accuracy "
        "(silver answer equals the oracle's), vote reward accuracy (a vote's pseudo-reward equals its true reward) "
        "and the share of questions the oracle cannot answer. Writes RUN/audit.json.",
    )
    p.add_argument("run", type=Path, help="run folder")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from visplay.analysis.audit import audit_run, format_audit
    from visplay.errors import UserError
    from visplay.io import write_json_atomic
    from visplay.preflight import check_output_dir
    from visplay.runfolder import RunFolder
    from visplay.runread import check_questions

    if not args.run.is_dir():
        raise UserError(f"run folder {args.run} does not exist" if not args.run.exists() else
                        f"run folder {args.run} is a file; give the run's folder")
    check_output_dir(args.run, "run folder")  # audit.json is written there
    run_folder = RunFolder(args.run)
    for iteration in run_folder.iterations_on_disk():  # damaged files named in one line, before any work
        if run_folder.questions_path(iteration).exists():
            check_questions(run_folder.questions_path(iteration))
    audits = audit_run(args.run)
    print(format_audit(audits))
    if audits:
        write_json_atomic(args.run / "audit.json", {str(i): a for i, a in audits.items()})
        print(f"\nwritten to {args.run / 'audit.json'}")
    return 0
