"""The configuration of a VisPlay run (``visplay evolve CONFIG.yaml``): every field has a help line.

Defaults are the paper's settings for real models; ``preset: tiny`` (or ``visplay demo``) swaps in the
toy world's CPU-sized values. Where the paper and the authors' code differ, the paper is the default and
the code's variant is one setting away (``reward.variant: official``, ``curation.band: [0.3, 0.8]``, ...).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, model_validator

from visplay.config.base import Bool, ExistingPath, Float, Int, Section, fail
from visplay.config.grpo import ROLES, GRPOSettings, missing_tracker, tracker_advice

Unit = Annotated[Float, Field(ge=0.0, le=1.0)]


class ModelConfig(Section):
    path: ExistingPath = Field(description="base VLM folder (Hugging Face checkpoint); both roles start from it")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="weights dtype for sampling; auto = bf16 on GPU, float32 on CPU")
    trust_remote_code: Bool = Field(False, description="allow custom model code in the model folder (off unless you "
                                    "trust it)")
    prompt_style: Literal["paper", "compact"] = Field(
        "paper", description="prompt templates: paper (long form, real models) or compact (tiny toy-world models)")
    min_pixels: Int | None = Field(None, ge=1, description="smallest image area fed to the model (Qwen-VL processors' "
                                   "size.shortest_edge); null = the processor's own (authors: 262144)")
    max_pixels: Int | None = Field(None, ge=1, description="largest image area fed to the model (Qwen-VL processors' "
                                   "size.longest_edge); null = the processor's own (authors: 4194304)")

    @model_validator(mode="after")
    def _pixel_bounds(self) -> ModelConfig:
        if self.min_pixels is not None and self.max_pixels is not None and self.min_pixels > self.max_pixels:
            raise fail("min_pixels", f"{self.min_pixels} is above model.max_pixels {self.max_pixels}")
        return self


class DataConfig(Section):
    images: ExistingPath = Field(description="unlabeled images: a folder, a .parquet file, or a saved HF dataset "
                                 "folder")
    image_column: str | None = Field(None, description="image column of a parquet file / dataset; null = guess "
                                     "(images, image)")
    images_by_iteration: list[ExistingPath] = Field(
        default_factory=list, description="a gradual domain shift (a departure: the paper draws one fixed pool): "
        "iteration i reads the i-th of these image sources instead of data.images, the last one for later "
        "iterations; empty = data.images every iteration")


class SamplerConfig(Section):
    backend: Literal["hf", "vllm", "openai"] = Field(
        "hf", description="sampler for the frozen models' votes and for curation: hf (transformers generate), vllm "
        "(in-process vllm.LLM, GPU), openai (an OpenAI-compatible server such as vllm serve)")
    max_batch_tokens: Int = Field(32768, ge=256, description="hf: token budget per generation batch (rows x (prompt + "
                                  "new tokens))")
    max_batch_rows: Int = Field(256, ge=1, description="hf: most rows (prompts x samples) per generation batch")
    gpu_memory_utilization: Float = Field(0.4, ge=0.05, le=0.95, description="vllm: share of this rank's GPU memory "
                                          "the frozen model's engine may take (training holds the rest)")
    tensor_parallel_size: Int = Field(1, ge=1, description="vllm: GPUs per engine (1 in multi-process runs: each rank "
                                      "serves its own copy)")
    max_model_len: Int | None = Field(None, ge=256, description="vllm: context length of the engine; null = the "
                                      "model's own")
    enforce_eager: Bool = Field(False, description="vllm: skip CUDA graph capture (faster start, slower decoding)")
    url: str | None = Field(None, description="openai: base URL of the endpoint, e.g. http://127.0.0.1:8000/v1; null "
                            "with server_command = http://127.0.0.1:<server_port>/v1")
    served_model: str | None = Field(None, description="openai: model name sent to the endpoint; null = the stage's "
                                     "model folder, which is the name `vllm serve FOLDER` gives it")
    api_key_env: str = Field("VISPLAY_SAMPLER_API_KEY", description="openai: environment variable holding the API key "
                             "(unset: no Authorization header, as local servers expect)")
    concurrency: Int = Field(32, ge=1, description="openai: requests in flight at once per rank")
    retries: Int = Field(5, ge=0, description="openai: retries of a failed request (connection, timeout, 429, 5xx), "
                         "with exponential backoff")
    request_timeout: Float = Field(1800.0, ge=1.0, description="openai: seconds to wait for one answer")
    server_command: str | None = Field(
        None, description="openai: command that serves one model, started by the run for each stage and stopped "
        "after it; {model} and {port} are filled in, e.g. 'vllm serve {model} --port {port} --generation-config "
        "vllm'; null = the endpoint at url is managed by you")
    server_gpus: str | Int | None = Field(None, description="openai: CUDA_VISIBLE_DEVICES of the started server, e.g. "
                                          "'4,5,6,7'; null = inherited")
    server_port: Int = Field(8000, ge=1, le=65535, description="openai: port of the started server")
    server_startup_timeout: Float = Field(900.0, ge=1.0, description="openai: seconds to wait for the started server "
                                          "to answer")

    @model_validator(mode="after")
    def _endpoint(self) -> SamplerConfig:
        if self.backend == "openai" and not self.url and not self.server_command:
            raise fail("url", "the openai backend needs an endpoint (sampler.url) or a command that serves each "
                       "stage's model (sampler.server_command)")
        if self.server_command is not None and "{model}" not in self.server_command:
            raise fail("server_command", "must contain {model} (the stage's frozen model folder)")
        return self


class Sampling(Section):
    """How one frozen model samples outside GRPO (votes, curation questions); the block's own help line says
    whose samples and what the authors used."""

    shared: ClassVar[bool] = True  # --help-config adds the block's help line to each key's

    temperature: Float = Field(1.0, ge=0.0, description="sampling temperature")
    top_p: Float = Field(0.99, ge=0.0, le=1.0, description="nucleus sampling: smallest token set of this probability")
    top_k: Int = Field(0, ge=0, description="sample from the k likeliest tokens; 0 = off")
    repetition_penalty: Float = Field(1.0, ge=0.0, description="repetition penalty; 1.0 = none")
    max_tokens: Int = Field(4096, ge=1, description="max new tokens per sample")

    def kwargs(self) -> dict[str, Any]:
        """The sampler's keyword arguments (``Sampler.sample``)."""
        return dict(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                    repetition_penalty=self.repetition_penalty, max_new_tokens=self.max_tokens)


class QuestionerConfig(Section):
    grpo: GRPOSettings = Field(default_factory=lambda: GRPOSettings.paper("questioner"),
                               description="GRPO settings of the questioner stage")
    train: Bool = Field(True, description="run the questioner stage; false copies Q_{i-1} forward, so the base "
                        "questioner writes every iteration's questions (the frozen-questioner study arm)")
    votes: Int = Field(10, ge=1, description="reasoner answers per candidate question during questioner GRPO (paper: "
                       "m = 10)")
    vote_sampling: Sampling = Field(
        default_factory=Sampling, description="the frozen reasoner's votes during questioner GRPO (paper silent: the "
        "GRPO rollout values; authors: top_p 1.0, top_k 40, 4096 tokens)")
    vote_prompt: Literal["reasoner", "authors"] = Field(
        "reasoner", description="prompt of the questioner-stage votes: reasoner = the reasoner's own step-by-step "
        "prompt (the paper is silent here); authors = the authors' server prompt, boxed answer only, with the "
        "question type")


class RewardConfig(Section):
    variant: Literal["paper", "official"] = Field(
        "paper", description="questioner reward: paper = valid * max(0, r_unc - lambda * share); official = authors' "
        "code (min(c, 1-c) - share, or -1 - share when unparsed)")
    diversity_scope: Literal["image", "batch"] = Field(
        "image", description="BLEU clustering over the G questions of one image (paper) or the whole rollout batch "
        "(authors' code)")
    validity: Literal["lenient", "strict"] = Field(
        "lenient", description="which questioner replies count as valid: lenient = any non-empty <question>; strict = "
        "the authors' full <type>..</type><question>..</question><answer>..</answer> triple")
    diversity_lambda: Float = Field(1.0, ge=0.0, description="weight of the diversity penalty (not given in the paper; "
                                    "R-Zero uses 1)")
    bleu_threshold: Float = Field(0.5, ge=0.0, le=1.0, description="agglomerative clustering distance threshold on "
                                  "1 - BLEU")
    reasoner_variant: Literal["paper", "official", "self-consistency"] = Field(
        "paper", description="reasoner reward: paper = 1/0 agreement with the silver answer; official = 0.9 accuracy "
        "+ 0.1 format; self-consistency = EvoLMM's continuous reward, the share of the response's own GRPO group "
        "that gives its answer, to the power consistency_gamma (a departure; the silver answer is then unused)")
    consistency_gamma: Float = Field(0.5, gt=0.0, le=1.0, description="exponent of the self-consistency reward "
                                     "(EvoLMM's gamma in (0, 1]: below 1 softens it)")


class CurationConfig(Section):
    images: Int = Field(1000, ge=1, description="images in the curation pool per iteration (authors: 1000)")
    samples_per_image: Int = Field(8, ge=1, description="questions sampled per image (authors: 8)")
    votes: Int = Field(9, ge=1, description="reasoner answers per candidate (authors' curation: m = 9)")
    band: tuple[Unit, Unit] = Field((0.25, 0.75), description="keep candidates whose confidence c is in [low, high] "
                                    "(paper 0.25-0.75; authors' code 0.3-0.8)")
    agreement: Bool = Field(False, description="also drop candidates whose questioner answer (the <answer> it wrote "
                            "with the question) differs from the majority vote: two views that agree, as in "
                            "co-training (a departure; the paper keeps by confidence alone)")
    drop_none_answers: Bool = Field(False, description="also drop candidates whose silver answer is the string 'None' "
                                    "(authors' code)")
    source: Literal["questioner", "world-oracle"] = Field(
        "questioner", description="who writes the reasoner's questions: questioner = Q_i, voted on by R_{i-1} (the "
        "method); world-oracle = the toy world's own question generator about the pool's images, answered by the "
        "oracle, every question kept (the oracle-rlvr study arm: the RL ceiling with true rewards, NOT "
        "self-evolution; toy world only)")
    pool: Literal["fresh", "fixed"] = Field(
        "fresh", description="curation images per iteration: fresh = a new seeded draw each iteration; fixed = the "
        "source's first `images` images every iteration (authors' code)")
    question_sampling: Sampling = Field(
        default_factory=lambda: Sampling(max_tokens=2048), description="the questioner's questions during curation "
        "(paper silent: the GRPO rollout values; authors: top_p 0.95, 4096 tokens)")
    vote_sampling: Sampling = Field(
        default_factory=Sampling, description="the frozen reasoner's votes during curation (paper silent: the GRPO "
        "rollout values; authors: top_p 1.0, top_k 40, 4096 tokens)")
    min_kept: Int = Field(16, ge=1, description="fewest kept questions the reasoner stage trains on")
    on_too_few: Literal["stop", "continue"] = Field(
        "stop", description="when fewer than min_kept survive: stop the run with an explanation, or continue (train "
        "on what survived; with none, the reasoner is carried over unchanged)")

    @model_validator(mode="after")
    def _band_order(self) -> CurationConfig:
        if self.band[0] > self.band[1]:
            raise fail("band", f"low {self.band[0]} is above high {self.band[1]}")
        return self


class ReasonerConfig(Section):
    grpo: GRPOSettings = Field(default_factory=lambda: GRPOSettings.paper("reasoner"),
                               description="GRPO settings of the reasoner stage")
    train: Bool = Field(True, description="run the reasoner stage; false copies R_{i-1} forward (the no-training "
                        "study arm: the evaluation noise floor)")
    labels: Literal["silver", "oracle"] = Field(
        "silver", description="answers the reasoner trains on: silver = the majority vote (the method); oracle = the "
        "toy world's true answers for the kept questions it can answer. oracle is the oracle-labels study arm, an "
        "upper bound and NOT self-evolution: with curation.source=world-oracle, the only settings under which the "
        "oracle touches training (toy world only)")
    balance_answers: Bool = Field(
        False, description="draw the stage's prompts so that, within each question form (its opening words: 'is "
        "there', 'how many', ...), every silver answer value is equally likely (a departure: the paper trains on the "
        "kept questions as they come, and questions about images answer 'yes' or '1' far more often than a balanced "
        "benchmark; GRPO learns that prior); label-free: it reads only questions and silver answers")
    objective: Literal["grpo", "sft"] = Field(
        "grpo", description="how the reasoner learns: grpo (the method); sft = supervised fine-tuning on the world's "
        "true completions (thought and answer) of the same questions, as many prompts as GRPO would see (the "
        "oracle-sft study arm: what any reward could teach with that data; needs curation.source=world-oracle)")
    sft_learning_rate: Float = Field(1e-4, gt=0.0, description="AdamW learning rate of objective=sft (the base "
                                     "recipe's; 100 steps of 32 recover a shifted domain at 1e-4)")


class EvalBenchmark(Section):
    name: str = Field(description="benchmark name (see `visplay eval --help`)")
    data: ExistingPath = Field(description="local parquet/JSONL file of the benchmark")
    limit: Int | None = Field(None, ge=1, description="evaluate only the first N items")


class EvalConfig(Section):
    benchmarks: list[EvalBenchmark] = Field(default_factory=list, description="benchmarks to score the reasoner on "
                                            "after every iteration (greedy); empty = none")
    max_new_tokens: Int = Field(1024, ge=1, description="max new tokens per benchmark answer")


class EvolveConfig(Section):
    out: str = Field("runs/visplay", description="run folder (config.yaml, state.json, metrics.jsonl, iter_XX/, "
                     "report.html)")
    iterations: Int = Field(3, ge=1, description="self-evolution iterations (paper: 3)")
    seed: Int = Field(0, description="seed of image choice and sampling")
    preset: Literal["paper", "tiny"] = Field("paper", description="defaults the file starts from: paper (real models) "
                                             "or tiny (CPU toy world)")
    model: ModelConfig = Field(description="the base model")
    data: DataConfig = Field(description="the unlabeled images")
    sampler: SamplerConfig = Field(default_factory=SamplerConfig, description="generation outside GRPO")
    questioner: QuestionerConfig = Field(default_factory=QuestionerConfig, description="questioner stage")
    reward: RewardConfig = Field(default_factory=RewardConfig, description="reward variants")
    curation: CurationConfig = Field(default_factory=CurationConfig, description="curation stage")
    reasoner: ReasonerConfig = Field(default_factory=ReasonerConfig, description="reasoner stage")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="evaluation after each iteration")

    @model_validator(mode="after")
    def _sft_needs_true_completions(self) -> EvolveConfig:
        if self.reasoner.objective == "sft" and self.curation.source != "world-oracle":
            raise fail("reasoner.objective", "sft trains on the toy world's true completions, which only "
                       "curation.source=world-oracle provides (the oracle-sft study arm)")
        return self

    @model_validator(mode="after")
    def _trackers_installed(self, info: ValidationInfo) -> EvolveConfig:
        # Trackers are imported when the first GRPO stage starts, after models load and the run folder is
        # written; a missing one is a user mistake to report now, before any work.
        if not (info.context or {}).get("preview"):
            for role in ROLES:
                tracker = missing_tracker(getattr(self, role).grpo.report_to)
                if tracker is not None:
                    raise fail(f"{role}.grpo.report_to", tracker_advice(tracker))
        return self
