"""Which parameters a training stage updates: a named setting instead of a list of module names.

- ``all``: every parameter (the paper and the authors' code);
- ``language``: everything but the vision tower (the former ``train_vision: false``);
- ``vision``: the vision tower only (patch embedding, blocks, merger);
- ``embed-norms``: the vision tower's patch embedding and its normalisation weights only (about 75 k of the
  toy base's 1.4 M parameters). A departure from the paper, after TENT (Wang et al., ICLR 2021), which adapts
  only normalisation to a shifted input domain: a new camera changes pixels, not language, so the smallest
  set that can undo a pixel shift is the first layer that reads pixels and the scales after it.
"""

from __future__ import annotations

import torch

TRAINABLE = ("all", "language", "vision", "embed-norms")


def vision_module(model) -> torch.nn.Module | None:
    """The vision tower of a VLM (``visual``, ``vision_tower`` or ``vision_model``, on the model or its inner
    ``model``), or None."""
    for owner in (model, getattr(model, "model", None)):
        if owner is None:
            continue
        for name in ("visual", "vision_tower", "vision_model"):
            module = getattr(owner, name, None)
            if isinstance(module, torch.nn.Module):
                return module
    return None


def is_embed_or_norm(name: str) -> bool:
    """A vision-tower parameter name that belongs to ``embed-norms``: the patch embedding or a norm.

    >>> [is_embed_or_norm(n) for n in ("patch_embed.proj.weight", "blocks.0.norm1.weight", "merger.ln_q.weight",
    ...                                 "blocks.0.attn.qkv.weight", "merger.mlp.0.weight")]
    [True, True, True, False, False]
    """
    parts = name.split(".")
    return parts[0] == "patch_embed" or any(p.startswith(("norm", "ln_", "layernorm")) for p in parts[:-1])


def apply_trainable(model, setting: str) -> int:
    """Freeze every parameter outside ``setting``; return how many parameters stay trainable. Raises
    ValueError for an unknown setting or a model without a vision tower (when the setting needs one)."""
    if setting not in TRAINABLE:
        raise ValueError(f"trainable must be one of {', '.join(TRAINABLE)}, got {setting!r}")
    if setting == "all":
        model.requires_grad_(True)
    else:
        vision = vision_module(model)
        if vision is None:
            raise ValueError(f"trainable={setting} needs a vision tower, and none was found in the model")
        if setting == "language":
            model.requires_grad_(True)
            vision.requires_grad_(False)
        else:
            model.requires_grad_(False)
            for name, param in vision.named_parameters():
                param.requires_grad_(setting == "vision" or is_embed_or_norm(name))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
