"""The frozen model of a stage as a sampler, on the backend the run's config names (``sampler.backend``).

``with frozen_sampler(cfg, model_dir, name) as sampler: ...`` opens the sampler for one phase (the
questioner stage's votes, curation's questions, curation's votes) and releases it at the end, so the
next model never shares the GPU with the last one:

- ``hf``: loads the model into this process (each rank its own copy in multi-process runs);
- ``vllm``: an in-process ``vllm.LLM`` (:mod:`visplay.engines.sampler_vllm`);
- ``openai``: a client of the configured endpoint; with ``sampler.server_command`` rank 0 first starts a
  server for this model on ``sampler.server_gpus`` (log: ``<log_dir>/<name>.log``) and stops it after.

In multi-process runs every rank enters the context, samples its share and gets every answer back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from visplay import distributed
from visplay.config import EvolveConfig, SamplerConfig
from visplay.stages.common import model_options


def check_sampler_environment(sampler: SamplerConfig) -> None:
    """Fail before any work when the configured backend cannot run here (one-line :class:`UserError`)."""
    if sampler.backend == "vllm":
        from visplay.engines.sampler_vllm import check_vllm_environment

        check_vllm_environment()
    elif sampler.backend == "openai" and sampler.server_command is None and distributed.is_main_process():
        from visplay.engines.sampler_openai import OpenAISampler

        # Reachable now (with retries); which model it serves is checked per stage.
        OpenAISampler(_endpoint(sampler, "-"), check_model=False).served_models()


def _endpoint(sampler: SamplerConfig, model: str):
    from visplay.engines.sampler_openai import Endpoint

    url = sampler.url or f"http://127.0.0.1:{sampler.server_port}/v1"
    return Endpoint(url=url, model=sampler.served_model or model, key_env=sampler.api_key_env,
                    concurrency=sampler.concurrency, retries=sampler.retries, timeout_s=sampler.request_timeout)


@contextlib.contextmanager
def frozen_sampler(cfg: EvolveConfig, model_dir: Path, name: str, log_dir: Path, progress: bool = True) -> Iterator:
    """A sampler over ``model_dir`` for one phase; ``name`` labels its server log (openai + server_command)."""
    sc = cfg.sampler
    ranks = distributed.current()
    if sc.backend == "hf":
        from visplay.engines.loading import free_memory, load_vlm
        from visplay.engines.sampler import HFSampler

        loaded = load_vlm(model_dir, **model_options(cfg))
        try:
            yield HFSampler(loaded, max_batch_tokens=sc.max_batch_tokens, max_batch_rows=sc.max_batch_rows,
                            progress=progress, ranks=ranks)
        finally:
            del loaded
            free_memory()
        return
    if sc.backend == "vllm":
        from visplay.engines.sampler_vllm import VLLMSampler

        sampler = VLLMSampler(model_dir, gpu_memory_utilization=sc.gpu_memory_utilization,
                              tensor_parallel_size=sc.tensor_parallel_size, max_model_len=sc.max_model_len,
                              dtype=cfg.model.dtype, enforce_eager=sc.enforce_eager, min_pixels=cfg.model.min_pixels,
                              max_pixels=cfg.model.max_pixels, trust_remote_code=cfg.model.trust_remote_code,
                              ranks=ranks, progress=progress)
        try:
            yield sampler
        finally:
            sampler.close()
        ranks.barrier()  # every rank's engine is gone before the next phase loads a model
        return
    if sc.backend == "openai":
        from visplay.engines.sampler_openai import ManagedServer, OpenAISampler

        server = None
        if sc.server_command is not None:
            server = ManagedServer(sc.server_command, model_dir, sc.server_port,
                                   Path(log_dir) / f"{name}.log", gpus=sc.server_gpus,
                                   startup_timeout_s=sc.server_startup_timeout)
        endpoint = _endpoint(sc, str(model_dir))
        try:
            if server is not None:
                ranks.on_main(lambda: server.start() and None)
            # Rank 0 checks that the endpoint serves this stage's model; then every rank has a client.
            ranks.on_main(lambda: OpenAISampler(endpoint, check_model=False).check_model())
            yield OpenAISampler(endpoint, ranks=ranks, progress=progress, check_model=False)
            ranks.barrier()  # every rank is done with the server
        finally:
            if server is not None:
                server.stop()  # a no-op on the ranks that did not start it
        return
    raise ValueError(f"unknown sampler backend {sc.backend!r}")
