"""The toy world's warm-started tiny base VLM: the shipped checkpoint, and building it afresh.

The base model is a tiny Qwen2.5-VL (about 1.4 M parameters) trained by supervised fine-tuning on fresh
world scenes for both self-play roles, imperfect on purpose (short training) so self-evolution has
headroom. :func:`build_base` copies the shipped checkpoint (``assets/base``) or, with ``rebuild=True``,
trains it afresh from :data:`visplay.world.recipe.RECIPE`; the recipe hash (recipe + training code) is
stored beside it.

- :mod:`visplay.world.recipe`: the recipe (every setting that determines the weights);
- :mod:`visplay.world.base_data`: training targets, examples and batches;
- :mod:`visplay.world.base_training`: the training loop and the recipe hash.

What makes it see, what was tried and rejected, and where it still fails: docs/toy_base_model.md.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from visplay.world.base_training import recipe_hash, train_base
from visplay.world.recipe import HASH_FILE, RECIPE

ASSET_DIR = Path(__file__).parent / "assets" / "base"


def shipped_recipe() -> dict:
    """The recipe record stored beside the shipped checkpoint (hash, recipe, build time)."""
    return json.loads((ASSET_DIR / HASH_FILE).read_text())



def build_base(out_dir: str | Path, rebuild: bool = False, seed: int | None = None, steps: int | None = None,
               check: bool = True, log: Callable[[str], None] = print) -> dict:
    """Write the base model to ``out_dir``: the shipped checkpoint, or (``rebuild``) one trained afresh.

    With ``check`` the toy-world check (:func:`visplay.world.check.check_model`) runs at the end and its
    table is logged. Returns ``{"path", "recipe_hash", "rebuilt", "seconds", "check"}`` (check: the report
    dict or None). ``seed`` / ``steps`` override the recipe (only with ``rebuild``).
    """
    from visplay.errors import UserError
    from visplay.io import atomic_dir

    out_dir = Path(out_dir)
    t0 = time.time()
    if not rebuild:
        if seed is not None or steps is not None:
            raise UserError("--seed/--steps change the recipe; use them with --rebuild")
        if not (ASSET_DIR / HASH_FILE).is_file():
            raise UserError(f"no shipped base model in {ASSET_DIR}; run with --rebuild to train one")
        with atomic_dir(out_dir) as tmp:
            for f in ASSET_DIR.iterdir():
                if f.is_file():
                    shutil.copy2(f, tmp / f.name)
        digest = shipped_recipe()["recipe_hash"]
        log(f"copied the shipped base model (recipe {digest}) to {out_dir}")
    else:
        recipe = RECIPE
        if seed is not None:
            recipe = replace(recipe, seed=seed)
        if steps is not None:
            recipe = replace(recipe, steps=steps)
        digest = recipe_hash(recipe)
        log(f"training the base model from the recipe (hash {digest}): {recipe.steps} steps of {recipe.batch_size}")
        with atomic_dir(out_dir) as tmp:
            train_base(tmp, recipe, log=log)
        log(f"trained in {time.time() - t0:.0f}s; written to {out_dir}")
    report = None
    if check:
        from visplay.world.check import check_model, format_check_report

        report = check_model(out_dir, log=log)
        log(format_check_report(report))
    return {"path": out_dir, "recipe_hash": digest, "rebuilt": rebuild, "seconds": round(time.time() - t0, 1),
            "check": report}
