"""The benchmarks, one file each, all behind :class:`visplay.evaluation.base.Benchmark`."""

from __future__ import annotations

from visplay.errors import UserError
from visplay.evaluation.base import Benchmark
from visplay.evaluation.benchmarks.hallusionbench import HallusionBench
from visplay.evaluation.benchmarks.mathverse import MathVerse
from visplay.evaluation.benchmarks.mathvision import MathVision
from visplay.evaluation.benchmarks.mathvista import MathVista
from visplay.evaluation.benchmarks.mmmu import MMMU
from visplay.evaluation.benchmarks.mmstar import MMStar
from visplay.evaluation.benchmarks.mmvet import MMVet
from visplay.evaluation.benchmarks.realworldqa import RealWorldQA
from visplay.evaluation.benchmarks.toy import Toy
from visplay.evaluation.benchmarks.visnumbench import VisNumBench

# Paper Table 1 order, then MathVista, MMStar (validation during training) and the toy benchmark.
BENCHMARKS: dict[str, type[Benchmark]] = {
    cls.name: cls
    for cls in (MMMU, MMVet, RealWorldQA, VisNumBench, MathVerse, MathVision, HallusionBench, MathVista, MMStar, Toy)
}

PAPER_BENCHMARKS = ("mmmu", "mmvet", "realworldqa", "visnumbench", "mathverse", "mathvision", "hallusionbench")


def get_benchmark(name: str) -> Benchmark:
    """A fresh benchmark object by name (case and punctuation ignored: "MM-Vet" is "mmvet")."""
    key = "".join(ch for ch in name.lower() if ch.isalnum())
    aliases = {"mathvision": "mathvision", "mathv": "mathvision", "hallusion": "hallusionbench",
               "realworld": "realworldqa", "visnum": "visnumbench"}
    key = aliases.get(key, key)
    if key not in BENCHMARKS:
        raise UserError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    return BENCHMARKS[key]()


__all__ = ["BENCHMARKS", "PAPER_BENCHMARKS", "get_benchmark"]
