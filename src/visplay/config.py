"""The configuration of a VisPlay run (``visplay evolve CONFIG.yaml``): every field has a help line.

Defaults are the paper's settings for real models; ``preset: tiny`` (or ``visplay demo``) swaps in the
toy world's CPU-sized values. Where the paper and the authors' code differ, the paper is the default and
the code's variant is one setting away (``reward.variant: official``, ``curation.band: [0.3, 0.8]``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from visplay.configuration import option
from visplay.engines.grpo import GRPOSettings
from visplay.errors import UserError


@dataclass
class ModelConfig:
    path: str = option(help="base VLM folder (Hugging Face checkpoint); both roles start from it", path="exists")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = option(
        "auto", help="weights dtype for sampling; auto = bf16 on GPU, float32 on CPU")
    trust_remote_code: bool = option(False, help="allow custom model code in the model folder (off unless you trust it)")
    prompt_style: Literal["paper", "compact"] = option(
        "paper", help="prompt templates: paper (long form, real models) or compact (tiny toy-world models)")
    min_pixels: int | None = option(None, help="smallest image area fed to the model (Qwen-VL processors' size.shortest_edge); "
                                    "null = the processor's own (authors: 262144)", min=1)
    max_pixels: int | None = option(None, help="largest image area fed to the model (Qwen-VL processors' size.longest_edge); "
                                    "null = the processor's own (authors: 4194304)", min=1)

    def check(self) -> None:
        if self.min_pixels is not None and self.max_pixels is not None and self.min_pixels > self.max_pixels:
            raise UserError(f"config key model.min_pixels: {self.min_pixels} is above model.max_pixels {self.max_pixels}")


@dataclass
class DataConfig:
    images: str = option(help="unlabeled images: a folder, a .parquet file, or a saved HF dataset folder", path="exists")
    image_column: str | None = option(None, help="image column of a parquet file / dataset; null = guess (images, image)")


@dataclass
class SamplerConfig:
    backend: Literal["hf", "vllm", "openai"] = option(
        "hf", help="sampler for the frozen models' votes and for curation: hf (transformers generate), vllm (in-process "
        "vllm.LLM, GPU), openai (an OpenAI-compatible server such as vllm serve)")
    max_batch_tokens: int = option(32768, help="hf: token budget per generation batch (rows x (prompt + new tokens))", min=256)
    max_batch_rows: int = option(256, help="hf: most rows (prompts x samples) per generation batch", min=1)
    gpu_memory_utilization: float = option(0.4, help="vllm: share of this rank's GPU memory the frozen model's engine "
                                           "may take (training holds the rest)", min=0.05, max=0.95)
    tensor_parallel_size: int = option(1, help="vllm: GPUs per engine (1 in multi-process runs: each rank serves its "
                                       "own copy)", min=1)
    max_model_len: int | None = option(None, help="vllm: context length of the engine; null = the model's own", min=256)
    enforce_eager: bool = option(False, help="vllm: skip CUDA graph capture (faster start, slower decoding)")
    url: str | None = option(None, help="openai: base URL of the endpoint, e.g. http://127.0.0.1:8000/v1; null with "
                             "server_command = http://127.0.0.1:<server_port>/v1")
    served_model: str | None = option(None, help="openai: model name sent to the endpoint; null = the stage's model "
                                      "folder, which is the name `vllm serve FOLDER` gives it")
    api_key_env: str = option("VISPLAY_SAMPLER_API_KEY", help="openai: environment variable holding the API key "
                              "(unset: no Authorization header, as local servers expect)")
    concurrency: int = option(32, help="openai: requests in flight at once per rank", min=1)
    retries: int = option(5, help="openai: retries of a failed request (connection, timeout, 429, 5xx), with "
                          "exponential backoff", min=0)
    request_timeout: float = option(1800.0, help="openai: seconds to wait for one answer", min=1.0)
    server_command: str | None = option(
        None, help="openai: command that serves one model, started by the run for each stage and stopped after it; "
        "{model} and {port} are filled in, e.g. 'vllm serve {model} --port {port} --generation-config vllm'; "
        "null = the endpoint at url is managed by you")
    server_gpus: str | int | None = option(None, help="openai: CUDA_VISIBLE_DEVICES of the started server, e.g. '4,5,6,7'; "
                                     "null = inherited")
    server_port: int = option(8000, help="openai: port of the started server", min=1, max=65535)
    server_startup_timeout: float = option(900.0, help="openai: seconds to wait for the started server to answer",
                                           min=1.0)

    def check(self) -> None:
        if self.backend == "openai" and not self.url and not self.server_command:
            raise UserError("config key sampler.url: the openai backend needs an endpoint (sampler.url) or a command "
                            "that serves each stage's model (sampler.server_command)")
        if self.server_command is not None and "{model}" not in self.server_command:
            raise UserError("config key sampler.server_command: must contain {model} (the stage's frozen model folder)")


@dataclass
class QuestionerConfig:
    grpo: GRPOSettings = field(default_factory=lambda: GRPOSettings.paper("questioner"),
                               metadata={"help": "GRPO settings of the questioner stage"})
    train: bool = option(True, help="run the questioner stage; false copies Q_{i-1} forward, so the base questioner "
                         "writes every iteration's questions (the frozen-questioner study arm)")
    votes: int = option(10, help="reasoner answers per candidate question during questioner GRPO (paper: m = 10)", min=1)
    answer_temperature: float = option(1.0, help="sampling temperature of the frozen reasoner's votes (questioner "
                                       "stage and curation)", min=0.0)
    answer_top_p: float = option(0.99, help="top_p of the frozen reasoner's votes (authors: 1.0)", min=0.0, max=1.0)
    answer_top_k: int = option(0, help="top_k of the frozen reasoner's votes; 0 = off (authors: 40)", min=0)
    answer_repetition_penalty: float = option(1.0, help="repetition penalty of the votes; 1.0 = none (authors: none)",
                                              min=0.0)
    answer_max_tokens: int = option(4096, help="max new tokens per reasoner vote", min=1)
    vote_prompt: Literal["reasoner", "authors"] = option(
        "reasoner", help="prompt of the questioner-stage votes: reasoner = the reasoner's own step-by-step prompt "
        "(the paper is silent here); authors = the authors' server prompt, boxed answer only, with the question type")


@dataclass
class RewardConfig:
    variant: Literal["paper", "official"] = option(
        "paper", help="questioner reward: paper = valid * max(0, r_unc - lambda * share); official = authors' code "
        "(min(c, 1-c) - share, or -1 - share when unparsed)")
    diversity_scope: Literal["image", "batch"] = option(
        "image", help="BLEU clustering over the G questions of one image (paper) or the whole rollout batch (authors' code)")
    validity: Literal["lenient", "strict"] = option(
        "lenient", help="which questioner replies count as valid: lenient = any non-empty <question>; strict = the "
        "authors' full <type>..</type><question>..</question><answer>..</answer> triple")
    diversity_lambda: float = option(1.0, help="weight of the diversity penalty (not given in the paper; R-Zero uses 1)", min=0.0)
    bleu_threshold: float = option(0.5, help="agglomerative clustering distance threshold on 1 - BLEU", min=0.0, max=1.0)
    reasoner_variant: Literal["paper", "official"] = option(
        "paper", help="reasoner reward: paper = 1/0 agreement with the silver answer; official = 0.9 accuracy + 0.1 format")


@dataclass
class CurationConfig:
    images: int = option(1000, help="images in the curation pool per iteration (authors: 1000)", min=1)
    samples_per_image: int = option(8, help="questions sampled per image (authors: 8)", min=1)
    votes: int = option(9, help="reasoner answers per candidate (authors' curation: m = 9)", min=1)
    band: tuple[float, float] = option((0.25, 0.75), help="keep candidates whose confidence c is in [low, high] "
                                       "(paper 0.25-0.75; authors' code 0.3-0.8)", min=0.0, max=1.0)
    drop_none_answers: bool = option(False, help="also drop candidates whose silver answer is the string 'None' (authors' code)")
    pool: Literal["fresh", "fixed"] = option(
        "fresh", help="curation images per iteration: fresh = a new seeded draw each iteration; fixed = the source's "
        "first `images` images every iteration (authors' code)")
    question_temperature: float = option(1.0, help="questioner sampling temperature during curation", min=0.0)
    question_top_p: float = option(0.99, help="questioner top_p during curation (authors: 0.95)", min=0.0, max=1.0)
    question_top_k: int = option(0, help="questioner top_k during curation; 0 = off", min=0)
    question_repetition_penalty: float = option(1.0, help="questioner repetition penalty during curation; 1.0 = none",
                                                min=0.0)
    question_max_tokens: int = option(2048, help="max new tokens per generated question", min=1)
    min_kept: int = option(16, help="fewest kept questions the reasoner stage trains on", min=1)
    on_too_few: Literal["stop", "continue"] = option(
        "stop", help="when fewer than min_kept survive: stop the run with an explanation, or continue (train on what "
        "survived; with none, the reasoner is carried over unchanged)")

    def check(self) -> None:
        if self.band[0] > self.band[1]:
            raise UserError(f"config key curation.band: low {self.band[0]} is above high {self.band[1]}")


@dataclass
class ReasonerConfig:
    grpo: GRPOSettings = field(default_factory=lambda: GRPOSettings.paper("reasoner"),
                               metadata={"help": "GRPO settings of the reasoner stage"})
    train: bool = option(True, help="run the reasoner stage; false copies R_{i-1} forward (the no-training study "
                         "arm: the evaluation noise floor)")
    labels: Literal["silver", "oracle"] = option(
        "silver", help="answers the reasoner trains on: silver = the majority vote (the method); oracle = the toy "
        "world's true answers for the kept questions it can answer. oracle is the oracle-labels study arm, an upper "
        "bound and NOT self-evolution: the only setting under which the oracle touches training (toy world only)")


@dataclass
class EvalBenchmark:
    name: str = option(help="benchmark name (see `visplay eval --help`)")
    data: str = option(help="local parquet/JSONL file of the benchmark", path="exists")
    limit: int | None = option(None, help="evaluate only the first N items", min=1)


@dataclass
class EvalConfig:
    benchmarks: list[EvalBenchmark] = field(default_factory=list, metadata={
        "help": "benchmarks to score the reasoner on after every iteration (greedy); empty = none"})
    max_new_tokens: int = option(1024, help="max new tokens per benchmark answer", min=1)


@dataclass
class EvolveConfig:
    out: str = option("runs/visplay", help="run folder (config.yaml, state.json, metrics.jsonl, iter_XX/, report.html)")
    iterations: int = option(3, help="self-evolution iterations (paper: 3)", min=1)
    seed: int = option(0, help="seed of image choice and sampling")
    preset: Literal["paper", "tiny"] = option("paper", help="defaults the file starts from: paper (real models) or tiny (CPU toy world)")
    model: ModelConfig = field(default_factory=ModelConfig, metadata={"help": "the base model"})
    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "the unlabeled images"})
    sampler: SamplerConfig = field(default_factory=SamplerConfig, metadata={"help": "generation outside GRPO"})
    questioner: QuestionerConfig = field(default_factory=QuestionerConfig, metadata={"help": "questioner stage"})
    reward: RewardConfig = field(default_factory=RewardConfig, metadata={"help": "reward variants"})
    curation: CurationConfig = field(default_factory=CurationConfig, metadata={"help": "curation stage"})
    reasoner: ReasonerConfig = field(default_factory=ReasonerConfig, metadata={"help": "reasoner stage"})
    eval: EvalConfig = field(default_factory=EvalConfig, metadata={"help": "evaluation after each iteration"})

    def check(self) -> None:
        # Trackers are imported when the first GRPO stage starts, after models load and the run folder is
        # written; a missing one is a user mistake to report now, before any work.
        from visplay.engines.grpo import check_trackers_installed

        for role in ("questioner", "reasoner"):
            check_trackers_installed(getattr(self, role).grpo.report_to, f"config key {role}.grpo.report_to")


def tiny_preset() -> dict:
    """Values that differ from the paper for the toy world's tiny models on 2 CPU cores."""
    return {
        "model": {"prompt_style": "compact"},
        "sampler": {"max_batch_tokens": 16384},
        "questioner": {"grpo": GRPOSettings.tiny("questioner").to_dict(), "votes": 10, "answer_max_tokens": 64},
        "curation": {"images": 64, "samples_per_image": 4, "votes": 9, "question_max_tokens": 48, "min_kept": 8},
        "reasoner": {"grpo": GRPOSettings.tiny("reasoner").to_dict()},
        "eval": {"max_new_tokens": 64},
    }


def _evolve_data(path, overrides, base: dict | None) -> dict:
    """The settings given: preset values < ``base`` < YAML < ``--set`` (defaults are filled in later)."""
    from visplay.configuration import _deep_merge, apply_overrides, read_yaml

    data = _deep_merge(base or {}, read_yaml(path) if path else {})
    data = apply_overrides(data, list(overrides or []))
    preset = data.get("preset", "paper")
    if preset not in ("paper", "tiny"):
        raise UserError(f"config key preset: must be 'paper' or 'tiny', got {preset!r}")
    start = tiny_preset() if preset == "tiny" else {}
    return _deep_merge(start, data)


def load_evolve_config(path=None, overrides=None, base: dict | None = None) -> EvolveConfig:
    """Defaults < preset < ``base`` < YAML < ``--set``; validated."""
    from visplay.configuration import load_config

    return load_config(EvolveConfig, base=_evolve_data(path, overrides, base))


REQUIRED = "(required)"


def preview_evolve_config(path=None, overrides=None) -> EvolveConfig:
    """The values a run with this YAML and these overrides would use (``--help-config``): built like
    :func:`load_evolve_config` but not validated, with keys still to be given shown as ``(required)``."""
    from visplay.configuration import _deep_merge, from_dict

    placeholders = {"model": {"path": REQUIRED}, "data": {"images": REQUIRED}}
    return from_dict(EvolveConfig, _deep_merge(placeholders, _evolve_data(path, overrides, None)))
