"""Run many ``visplay`` command lines in one process, each exactly as the ``visplay`` script runs it.

Used by test_bad_inputs.py: ``python run_cases.py SANDBOX CASES.json RESULTS.json``. For every case it calls
``visplay.cli.main.main(argv)`` (what ``python -m visplay`` calls), with file descriptors 1 and 2 captured
(so C-level writes count too), and records the exit code, the captured output, the traceback of any
exception that escaped ``main`` (the script would have printed it and exited 1), and every file or folder of
SANDBOX that appeared, vanished or changed (kind, size, mode, modification time). One process keeps the cost
of importing torch and transformers to once for the whole corpus.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path


def snapshot(root: Path) -> dict[str, list]:
    """Every entry under ``root``: relative path -> [kind, size, mode, mtime_ns] (mtime only for files)."""
    entries: dict[str, list] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = os.path.join(folder, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            kind = "link" if os.path.islink(path) else "dir" if name in dirs else "file"
            entries[os.path.relpath(path, root)] = [kind, st.st_size if kind == "file" else 0, st.st_mode,
                                                    st.st_mtime_ns if kind != "dir" else 0]
    return entries


def run_case(argv: list[str]) -> dict:
    from visplay.cli.main import main

    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        escaped = None
        started = time.perf_counter()
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - exactly what would reach the user as a traceback
            escaped = traceback.format_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return {"code": code, "stdout": out.read().decode("utf-8", "replace"),
                "stderr": err.read().decode("utf-8", "replace"), "escaped": escaped, "seconds": round(seconds, 3)}


def main() -> None:
    sandbox, cases_file, results_file = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    cases = json.loads(cases_file.read_text())
    results = []
    for case in cases:
        before = snapshot(sandbox)
        result = run_case(case["argv"])
        after = snapshot(sandbox)
        result["changed"] = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        results.append({"name": case["name"], **result})
        # Written after every case: a crash of the whole process still leaves the finished cases readable.
        results_file.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
