"""Sample n completions for each (images, chat messages) request, behind one interface.

Backends (``sampler.backend``; :func:`visplay.stages.sampling.open_sampler` builds the one a run asks for):
- :class:`HFSampler`: transformers ``generate`` on CPU or GPU. Requests are sorted by prompt length and
  batched (left padding) into batches sized to a token budget. Each batch is seeded from (seed, batch
  index), so a fixed seed gives the same strings for the same requests and settings.
- ``vllm`` (:mod:`visplay.engines.sampler_vllm`): an in-process ``vllm.LLM`` on GPU machines.
- ``openai`` (:mod:`visplay.engines.sampler_openai`): any OpenAI-compatible chat endpoint (``vllm serve``).

**n samples without re-encoding.** ``generate(num_return_sequences=n)`` repeats every input n times
before the forward pass, so the vision tower and the prompt's prefill run n times per request. Here the
batch is prefilled ONCE (all prompt tokens but the last, one row per request), the key/value cache is
repeated n times, and ``generate`` continues from it; the n votes share one encoding of their image and
prompt. Sampling is unchanged: the same logits processors draw from the same random stream, so a fixed
seed gives the same strings as the expanded call (``benchmarks/bench_votes.py`` checks it and measures the
speed-up).

**Multi-process runs.** Given the run's :class:`visplay.distributed.Ranks`, every rank computes the same
batch plan and generates only its share of the batches (round robin); the texts are gathered on every
rank. Batches and their seeds do not depend on the number of ranks, so 1 and N processes give the same
strings.

Every generation parameter is explicit. transformers' ``generate`` fills any parameter it is not given from
the checkpoint's ``generation_config.json`` (Qwen2.5-VL-Instruct ships ``repetition_penalty: 1.05`` and
chat values of temperature/top_p/top_k), then from library defaults (``top_k: 50``). So every call builds a
complete :func:`explicit_generation_config` from the caller's values (neutral values for the knobs VisPlay
does not expose), and a checkpoint's own generation config can never change a sample. The stop token is
the tokenizer's ``eos_token`` (the authors' vLLM scripts stop at ``tokenizer.eos_token_id`` too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from PIL import Image
from tqdm.auto import tqdm

from visplay.distributed import SINGLE, Ranks
from visplay.engines.images import fit_pixels, to_rgb
from visplay.engines.loading import LoadedVLM
from visplay.engines.messages import count_image_parts

# Inputs with one entry per prompt token: cut with the prompt for the shared prefill.
_PER_TOKEN_INPUTS = ("input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids")


@dataclass
class SampleRequest:
    """One prompt: chat messages whose ``{"type": "image"}`` parts are filled, in order, by ``images``."""

    messages: list[dict]
    images: list[Image.Image] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Checked once here, for every backend: a mismatch would silently shift images between parts.
        if count_image_parts(self.messages) != len(self.images):
            raise ValueError(f"request has {count_image_parts(self.messages)} image parts but {len(self.images)} images")


def request_seed(seed: int, index: int) -> int:
    """The seed of request ``index`` of a call seeded ``seed``, for backends that seed each request (vLLM,
    OpenAI-compatible servers); fits the 63-bit range they accept.

    >>> request_seed(0, 0), request_seed(0, 1), request_seed(1, 0)
    (0, 1, 1000003)
    """
    return (seed * 1_000_003 + index) % (2**63)


class Sampler(Protocol):
    def sample(
        self,
        requests: Sequence[SampleRequest],
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        seed: int = 0,
        desc: str | None = None,
        top_k: int = 0,
        repetition_penalty: float = 1.0,
    ) -> list[list[str]]:
        """Return ``n`` completions (decoded text, special tokens removed) for each request, in order.

        ``temperature <= 0`` is greedy decoding (one sample repeated n times); ``top_k = 0`` is off.
        """
        ...


def explicit_generation_config(tokenizer, *, do_sample: bool, temperature: float = 1.0, top_p: float = 1.0,
                               top_k: int = 0, repetition_penalty: float = 1.0, max_new_tokens: int = 256,
                               num_return_sequences: int = 1):
    """A ``GenerationConfig`` with every decoding knob set, so that nothing is filled from a checkpoint.

    >>> class Tok: eos_token_id, pad_token_id, bos_token_id = 2, 0, None
    >>> g = explicit_generation_config(Tok(), do_sample=True, temperature=0.7, top_k=40)
    >>> g.top_k, g.top_p, g.repetition_penalty, g.no_repeat_ngram_size, g.eos_token_id
    (40, 1.0, 1.0, 0, 2)
    """
    from transformers import GenerationConfig

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    # Greedy decoding applies no sampling warper, so its temperature/top_p/top_k stay unset (transformers
    # warns about any value there); the loaded model's generation config is neutral (engines.loading).
    return GenerationConfig(
        do_sample=do_sample,
        temperature=temperature if do_sample else None,
        top_p=top_p if do_sample else None,
        top_k=top_k if do_sample else None,
        min_p=None, typical_p=1.0, epsilon_cutoff=0.0, eta_cutoff=0.0,
        repetition_penalty=repetition_penalty,
        no_repeat_ngram_size=0, encoder_no_repeat_ngram_size=0, length_penalty=1.0,
        num_beams=1, num_beam_groups=1, min_length=0,
        max_new_tokens=max_new_tokens, max_length=None,
        num_return_sequences=num_return_sequences,
        bad_words_ids=None, suppress_tokens=None, begin_suppress_tokens=None,
        forced_bos_token_id=None, forced_eos_token_id=None, sequence_bias=None,
        renormalize_logits=False, remove_invalid_values=False, exponential_decay_length_penalty=None,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=pad, bos_token_id=tokenizer.bos_token_id,
        use_cache=True,
    )


class HFSampler:
    """Batched sampling with transformers ``generate``.

    Args:
        loaded: model and processor from :func:`visplay.engines.loading.load_vlm`.
        max_batch_tokens: budget of (prompt + new) tokens x rows per batch; bounds activation memory.
        max_batch_rows: upper bound on rows (requests x n) per batch.
        progress: show a progress bar when there are more than ``progress_min`` requests.
        ranks: split the batches across the processes of a multi-process run (every rank must call
            :meth:`sample` with the same requests); default: this process does everything.
    """

    def __init__(self, loaded: LoadedVLM, max_batch_tokens: int = 32768, max_batch_rows: int = 256,
                 progress: bool = True, progress_min: int = 16, ranks: Ranks = SINGLE):
        self.loaded = loaded
        self.ranks = ranks
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_rows = max_batch_rows
        self.progress = progress
        self.progress_min = progress_min
        image_processor = loaded.processor.image_processor
        size = getattr(image_processor, "size", None) or {}
        get = size.get if isinstance(size, dict) else lambda k, d=None: getattr(size, k, d)
        factor = getattr(image_processor, "patch_size", 14) * getattr(image_processor, "merge_size", 2)
        self.min_side = factor
        self.max_pixels = int(get("longest_edge", None) or 12845056)

    def _prompt(self, request: SampleRequest) -> tuple[str, list[Image.Image]]:
        text = self.loaded.processor.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)
        images = [fit_pixels(to_rgb(img), self.min_side, self.max_pixels) for img in request.images]
        return text, images

    def _prompt_length(self, text: str, images: list[Image.Image]) -> int:
        tokens = len(self.loaded.tokenizer(text, add_special_tokens=False)["input_ids"])
        # Each image expands to (pixels / (patch * merge)^2) tokens.
        return tokens + sum(img.size[0] * img.size[1] // (self.min_side ** 2) for img in images)

    def plan(self, lengths: Sequence[int], rows_per_request: int, max_new_tokens: int) -> list[list[int]]:
        """Batches of request indices, longest prompt first, each within the token and row budgets.

        The plan depends only on the requests and the settings (never on the number of ranks).
        """
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        batches, start = [], 0
        while start < len(order):
            # Longest first: the first request of a batch bounds every row's length.
            row_tokens = lengths[order[start]] + max_new_tokens
            size = max(1, min(self.max_batch_tokens // (row_tokens * rows_per_request),
                              self.max_batch_rows // rows_per_request))
            batches.append(order[start:start + size])
            start += size
        return batches

    @torch.no_grad()
    def sample(self, requests: Sequence[SampleRequest], n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
               max_new_tokens: int = 256, seed: int = 0, desc: str | None = None, top_k: int = 0,
               repetition_penalty: float = 1.0) -> list[list[str]]:
        if n < 1:
            raise ValueError("n must be >= 1")
        if not requests:
            return []
        greedy = temperature <= 0
        rows_per_request = 1 if greedy else n
        prepared = [self._prompt(r) for r in requests]
        lengths = [self._prompt_length(t, imgs) for t, imgs in prepared]
        plan = self.plan(lengths, rows_per_request, max_new_tokens)
        mine = self.ranks.mine(len(plan))
        processor = self.loaded.processor
        generation_config = explicit_generation_config(
            self.loaded.tokenizer, do_sample=not greedy, temperature=temperature, top_p=top_p, top_k=top_k,
            repetition_penalty=repetition_penalty, max_new_tokens=max_new_tokens, num_return_sequences=1)
        results: dict[int, list[str]] = {}
        bar = tqdm(total=sum(len(plan[b]) for b in mine), desc=desc or "sampling", unit="prompt", leave=False,
                   disable=not self.progress or not self.ranks.is_main or len(requests) < self.progress_min)
        for batch_index in mine:
            batch = plan[batch_index]
            texts = [prepared[i][0] for i in batch]
            images = [img for i in batch for img in prepared[i][1]]
            inputs = processor(text=texts, images=images or None, padding=True, return_tensors="pt")
            inputs = inputs.to(self.loaded.device)
            new_tokens = self._generate(dict(inputs), rows_per_request, generation_config,
                                        seed=(seed * 1_000_003 + batch_index) % (2**63))
            texts_out = processor.batch_decode(new_tokens, skip_special_tokens=True)
            for j, i in enumerate(batch):
                results[i] = [texts_out[j]] * n if greedy else texts_out[j * n:(j + 1) * n]
            bar.update(len(batch))
        bar.close()
        results = self.ranks.merge(results)
        return [results[i] for i in range(len(requests))]

    def _generate(self, inputs: dict, rows_per_request: int, generation_config, seed: int) -> torch.Tensor:
        """New tokens, ``rows_per_request`` consecutive rows per prompt of the batch."""
        model = self.loaded.model
        prompt_length = inputs["input_ids"].shape[1]
        if rows_per_request > 1:
            # Prefill all prompt tokens but the last, one row per prompt; repeat the cache per sample.
            prefill = {k: v[:, :-1] if k in _PER_TOKEN_INPUTS else v for k, v in inputs.items()}
            cache = model(**prefill, use_cache=True, **self._logits_to_keep()).past_key_values
            cache.batch_repeat_interleave(rows_per_request)
            _repeat_rope_deltas(model, rows_per_request)
            inputs = {"input_ids": inputs["input_ids"].repeat_interleave(rows_per_request, dim=0),
                      "attention_mask": inputs["attention_mask"].repeat_interleave(rows_per_request, dim=0),
                      "past_key_values": cache}
        # Prefill draws nothing: seeding just before generate gives the same stream as the expanded call.
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
        output = model.generate(**inputs, generation_config=generation_config)
        return output[:, prompt_length:]

    def _logits_to_keep(self) -> dict:
        # Only the last position's logits are ever used; skip the vocabulary projection of the others.
        import inspect

        params = inspect.signature(self.loaded.model.forward).parameters
        return {"logits_to_keep": 1} if "logits_to_keep" in params else {}


def _repeat_rope_deltas(model, repeats: int) -> None:
    """Qwen-VL models keep the prefill's multimodal rotary offsets per row (``rope_deltas``) and add them to
    the positions of every later token; the cache now holds ``repeats`` rows per prompt, so must they."""
    for owner in (model, getattr(model, "model", None)):
        deltas = getattr(owner, "rope_deltas", None)
        if isinstance(deltas, torch.Tensor):
            owner.rope_deltas = deltas.repeat_interleave(repeats, dim=0)
