"""Sample n completions for each (images, chat messages) request, behind one interface.

Backends:
- :class:`HFSampler`: transformers ``generate`` on CPU or GPU. Requests are sorted by prompt length and
  batched (left padding) into batches sized to a token budget; n samples come from
  ``num_return_sequences``. Each batch is seeded from (seed, batch index), so a fixed seed gives the same
  strings for the same requests and settings.

Every generation parameter is explicit. transformers' ``generate`` fills any parameter it is not given from
the checkpoint's ``generation_config.json`` (Qwen2.5-VL-Instruct ships ``repetition_penalty: 1.05`` and
chat values of temperature/top_p/top_k), then from library defaults (``top_k: 50``). So every call builds a
complete :func:`explicit_generation_config` from the caller's values (neutral values for the knobs VisPlay
does not expose), and a checkpoint's own generation config can never change a sample. The stop token is
the tokenizer's ``eos_token`` (the authors' vLLM scripts stop at ``tokenizer.eos_token_id`` too).
- vLLM (in-process or an OpenAI-compatible server) plugs in behind the same :class:`Sampler` protocol on GPU
  machines; :func:`make_sampler` is the seam.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import torch
from PIL import Image
from tqdm.auto import tqdm

from visplay.engines.images import fit_pixels, to_rgb
from visplay.engines.loading import LoadedVLM
from visplay.errors import UserError


@dataclass
class SampleRequest:
    """One prompt: chat messages whose ``{"type": "image"}`` parts are filled, in order, by ``images``."""

    messages: list[dict]
    images: list[Image.Image] = field(default_factory=list)


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


def _count_image_parts(messages: list[dict]) -> int:
    count = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            count += sum(1 for part in content if isinstance(part, dict) and part.get("type") == "image")
    return count


class HFSampler:
    """Batched sampling with transformers ``generate``.

    Args:
        loaded: model and processor from :func:`visplay.engines.loading.load_vlm`.
        max_batch_tokens: budget of (prompt + new) tokens x rows per batch; bounds activation memory.
        max_batch_rows: upper bound on rows (requests x n) per batch.
        progress: show a progress bar when there are more than ``progress_min`` requests.
    """

    def __init__(self, loaded: LoadedVLM, max_batch_tokens: int = 32768, max_batch_rows: int = 256,
                 progress: bool = True, progress_min: int = 16):
        self.loaded = loaded
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
        if _count_image_parts(request.messages) != len(request.images):
            raise ValueError(
                f"request has {_count_image_parts(request.messages)} image parts but {len(request.images)} images"
            )
        text = self.loaded.processor.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)
        images = [fit_pixels(to_rgb(img), self.min_side, self.max_pixels) for img in request.images]
        return text, images

    def _prompt_length(self, text: str, images: list[Image.Image]) -> int:
        tokens = len(self.loaded.tokenizer(text, add_special_tokens=False)["input_ids"])
        # Each image expands to (pixels / (patch * merge)^2) tokens.
        return tokens + sum(img.size[0] * img.size[1] // (self.min_side ** 2) for img in images)

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
        order = sorted(range(len(requests)), key=lambda i: -lengths[i])
        results: list[list[str]] = [[] for _ in requests]
        model, processor = self.loaded.model, self.loaded.processor
        device = self.loaded.device
        bar = tqdm(total=len(requests), desc=desc or "sampling", unit="prompt", leave=False,
                   disable=not self.progress or len(requests) < self.progress_min)
        start, batch_index = 0, 0
        while start < len(order):
            # Longest first: the first request of a batch bounds every row's length.
            row_tokens = lengths[order[start]] + max_new_tokens
            size = max(1, min(self.max_batch_tokens // (row_tokens * rows_per_request),
                              self.max_batch_rows // rows_per_request))
            batch = order[start:start + size]
            texts = [prepared[i][0] for i in batch]
            images = [img for i in batch for img in prepared[i][1]]
            inputs = processor(text=texts, images=images or None, padding=True, return_tensors="pt")
            inputs = inputs.to(device)
            generator_seed = (seed * 1_000_003 + batch_index) % (2**63)
            torch.manual_seed(generator_seed)
            if torch.cuda.is_available():
                torch.cuda.manual_seed_all(generator_seed)
            generation_config = explicit_generation_config(
                self.loaded.tokenizer, do_sample=not greedy, temperature=temperature, top_p=top_p, top_k=top_k,
                repetition_penalty=repetition_penalty, max_new_tokens=max_new_tokens,
                num_return_sequences=rows_per_request)
            output = model.generate(**inputs, generation_config=generation_config)
            new_tokens = output[:, inputs["input_ids"].shape[1]:]
            texts_out = processor.batch_decode(new_tokens, skip_special_tokens=True)
            for j, i in enumerate(batch):
                if greedy:
                    results[i] = [texts_out[j]] * n
                else:
                    results[i] = texts_out[j * n:(j + 1) * n]
            bar.update(len(batch))
            start += size
            batch_index += 1
        bar.close()
        return results


def make_sampler(loaded: LoadedVLM, backend: str = "hf", **kwargs) -> Sampler:
    """The sampler for ``backend``: ``hf`` (transformers, CPU or GPU) or ``vllm`` (GPU machines)."""
    if backend == "hf":
        return HFSampler(loaded, **kwargs)
    if backend == "vllm":
        # The seam for the vLLM backend (in-process LLM or an OpenAI-compatible server): same Sampler
        # protocol, chosen by config. Not built yet; refuse clearly instead of falling back silently.
        raise UserError("the vllm sampler backend is not available yet; use backend 'hf'")
    raise UserError(f"unknown sampler backend {backend!r}; choose 'hf' or 'vllm'")
