"""The ``vllm`` sampler backend: an in-process ``vllm.LLM`` for the frozen model of a stage (GPU machines).

- Prompts are built with the checkpoint's own chat template through the same processor the HF sampler uses
  (so both backends see the same text), and the images go in as ``multi_modal_data``.
- ``n`` samples per prompt come from one request (vLLM prefills the prompt once and forks it; prefix
  caching also shares the image and prompt across requests that repeat them).
- Every sampling parameter is explicit, the engine ignores the checkpoint's generation_config.json
  (``generation_config="vllm"``), and each request is seeded from (call seed, request index), so the
  samples do not depend on batching or on the number of ranks.
- GPU share (``gpu_memory_utilization``), tensor parallelism and context length are configurable; the
  engine lives on this process's GPU (in a multi-process run: each rank's own, started with vLLM's
  ``external_launcher`` as TRL's colocate mode does) and is released by :meth:`VLLMSampler.close` at the end
  of the stage.

``vllm`` is imported only when the backend is used; :func:`check_vllm_environment` says in one line what is
missing (the package, or a GPU).
"""

from __future__ import annotations

import gc
import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from visplay.distributed import SINGLE, Ranks
from visplay.errors import UserError

log = logging.getLogger(__name__)


def check_vllm_environment() -> None:
    """Raise a one-line :class:`UserError` unless vLLM can run here (installed, and a CUDA GPU)."""
    if importlib.util.find_spec("vllm") is None:
        raise UserError("sampler.backend=vllm: vllm is not installed (pip install 'visplay[gpu]' on a GPU machine); "
                        "use sampler.backend=hf, or openai with a server elsewhere")
    import torch

    if not torch.cuda.is_available():
        raise UserError("sampler.backend=vllm: no CUDA GPU on this machine; use sampler.backend=hf, or openai with a "
                        "server elsewhere")


def llm_kwargs(model: str | Path, *, gpu_memory_utilization: float, tensor_parallel_size: int = 1,
               max_model_len: int | None = None, dtype: str = "auto", enforce_eager: bool = False,
               min_pixels: int | None = None, max_pixels: int | None = None, trust_remote_code: bool = False,
               ranks: Ranks = SINGLE, seed: int = 0) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM`` for a frozen model.

    >>> kw = llm_kwargs("/m", gpu_memory_utilization=0.4, max_pixels=4194304)
    >>> kw["generation_config"], kw["enable_prefix_caching"], kw["mm_processor_kwargs"], "distributed_executor_backend" in kw
    ('vllm', True, {'max_pixels': 4194304}, False)
    >>> llm_kwargs("/m", gpu_memory_utilization=0.4, ranks=Ranks(1, 2))["distributed_executor_backend"]
    'external_launcher'
    """
    if ranks.world > 1 and tensor_parallel_size != 1:
        raise UserError("sampler.tensor_parallel_size must be 1 in multi-process runs (each rank serves its own copy "
                        "of the frozen model); for a larger model use sampler.backend=openai with its own GPUs")
    kwargs: dict[str, Any] = dict(
        model=str(model),
        tokenizer=str(model),
        gpu_memory_utilization=gpu_memory_utilization,
        tensor_parallel_size=tensor_parallel_size,
        dtype={"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}.get(dtype, "auto"),
        enable_prefix_caching=True,
        # Sampling settings come from VisPlay's config only, never from the checkpoint's generation_config.json.
        generation_config="vllm",
        limit_mm_per_prompt={"image": 1, "video": 0},
        trust_remote_code=trust_remote_code,
        enforce_eager=enforce_eager,
        seed=seed,
    )
    if max_model_len is not None:
        kwargs["max_model_len"] = max_model_len
    pixels = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v is not None}
    if pixels:
        kwargs["mm_processor_kwargs"] = pixels
    if ranks.world > 1:
        # One engine per rank inside the launcher's processes (TRL's colocate mode does the same).
        kwargs["distributed_executor_backend"] = "external_launcher"
    return kwargs


def sampling_kwargs(n: int, temperature: float, top_p: float, top_k: int, repetition_penalty: float,
                    max_new_tokens: int, seed: int) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for one request; ``temperature <= 0`` is greedy (n = 1).

    >>> sampling_kwargs(10, 1.0, 0.99, 0, 1.0, 64, 5)["n"], sampling_kwargs(10, 0.0, 0.99, 40, 1.0, 64, 5)["n"]
    (10, 1)
    """
    greedy = temperature <= 0
    return dict(
        n=1 if greedy else n,
        temperature=0.0 if greedy else float(temperature),
        top_p=1.0 if greedy else float(top_p),
        top_k=0 if greedy or top_k <= 0 else int(top_k),  # 0 = off (vLLM >= 0.22, as TRL passes it)
        min_p=0.0,
        repetition_penalty=float(repetition_penalty),
        presence_penalty=0.0,
        frequency_penalty=0.0,
        max_tokens=int(max_new_tokens),
        seed=int(seed),
        skip_special_tokens=True,
    )


def vllm_prompt(text: str, images: Sequence) -> dict[str, Any]:
    """One ``LLM.generate`` input: the chat-templated text and its images.

    >>> vllm_prompt("<img> Q?", ["I"])
    {'prompt': '<img> Q?', 'multi_modal_data': {'image': 'I'}}
    >>> vllm_prompt("Q?", [])
    {'prompt': 'Q?'}
    """
    prompt: dict[str, Any] = {"prompt": text}
    if images:
        prompt["multi_modal_data"] = {"image": images[0] if len(images) == 1 else list(images)}
    return prompt


def map_outputs(indices: Sequence[int], outputs: Sequence, n: int, greedy: bool) -> dict[int, list[str]]:
    """``{request index: n texts}`` from ``LLM.generate``'s outputs (one per prompt, in prompt order).

    Each output's completions are taken in their ``index`` order; greedy requests ask for one completion,
    repeated n times (the :class:`~visplay.engines.sampler.Sampler` contract).
    """
    if len(outputs) != len(indices):
        raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(indices)} prompts")
    expected = 1 if greedy else n
    result = {}
    for index, output in zip(indices, outputs):
        completions = sorted(output.outputs, key=lambda c: getattr(c, "index", 0))
        if len(completions) != expected:
            raise RuntimeError(f"vLLM returned {len(completions)} completions for a request of n={expected}")
        texts = [c.text for c in completions]
        result[index] = texts * n if greedy else texts
    return result


class VLLMSampler:
    """The :class:`visplay.engines.sampler.Sampler` protocol over an in-process ``vllm.LLM``."""

    def __init__(self, model: str | Path, *, gpu_memory_utilization: float = 0.4, tensor_parallel_size: int = 1,
                 max_model_len: int | None = None, dtype: str = "auto", enforce_eager: bool = False,
                 min_pixels: int | None = None, max_pixels: int | None = None, trust_remote_code: bool = False,
                 ranks: Ranks = SINGLE, progress: bool = True):
        check_vllm_environment()
        from vllm import LLM

        from visplay.engines.loading import load_processor, read_model_config

        model = Path(model)
        config = read_model_config(model)
        self.processor = load_processor(model, config["model_type"], trust_remote_code)
        self.ranks = ranks
        self.progress = progress
        self.llm = LLM(**llm_kwargs(model, gpu_memory_utilization=gpu_memory_utilization,
                                    tensor_parallel_size=tensor_parallel_size, max_model_len=max_model_len,
                                    dtype=dtype, enforce_eager=enforce_eager, min_pixels=min_pixels,
                                    max_pixels=max_pixels, trust_remote_code=trust_remote_code, ranks=ranks))

    def sample(self, requests, n: int = 1, temperature: float = 1.0, top_p: float = 1.0, max_new_tokens: int = 256,
               seed: int = 0, desc: str | None = None, top_k: int = 0, repetition_penalty: float = 1.0) -> list[list[str]]:
        from vllm import SamplingParams

        from visplay.engines.images import to_rgb
        from visplay.engines.sampler import request_seed

        if n < 1:
            raise ValueError("n must be >= 1")
        if not requests:
            return []
        mine = self.ranks.mine(len(requests))
        prompts, params = [], []
        for i in mine:
            request = requests[i]
            text = self.processor.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)
            prompts.append(vllm_prompt(text, [to_rgb(img) for img in request.images]))
            params.append(SamplingParams(**sampling_kwargs(n, temperature, top_p, top_k, repetition_penalty,
                                                           max_new_tokens, request_seed(seed, i))))
        outputs = self.llm.generate(prompts, sampling_params=params,
                                    use_tqdm=self.progress and self.ranks.is_main) if prompts else []
        merged = self.ranks.merge(map_outputs(mine, outputs, n, greedy=temperature <= 0))
        return [merged[i] for i in range(len(requests))]

    def close(self) -> None:
        """Release the engine and its GPU memory (the next stage loads another model)."""
        llm, self.llm = getattr(self, "llm", None), None
        if llm is None:
            return
        engine = getattr(llm, "llm_engine", None)
        for owner, method in ((engine, "shutdown"), (getattr(engine, "engine_core", None), "shutdown")):
            fn = getattr(owner, method, None)
            if callable(fn):
                try:
                    fn()
                except Exception:  # noqa: BLE001 - best effort; the memory is freed below either way
                    log.debug("vLLM %s failed", method, exc_info=True)
                break
        del llm, engine
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
