"""The training augmentation (`config.augment`) applied to the first examples of a split, as
DIR/samples/NAME_step_N.png: a row per example, its original then each view, so the
augmentations can be checked by eye. The same fixed key every time."""

import os

import einops
import jax
import numpy as np

from aigc_jax import evaluators
from aigc_jax.options import augment as augment_lib
from aigc_jax.evaluators import grid

DEFAULTS = {"num": 8, "value_range": (0.0, 1.0)}


def make(name, ec, ctx):
  aug = jax.jit(augment_lib.parse(ctx.config.augment))
  data = ctx.split(ec.split)

  def run(variables, step, rng):
    del variables, rng
    x = np.asarray(data.load(np.arange(min(ec.num, len(data))))["input"], np.float32)
    views = evaluators.to_host(aug(jax.random.PRNGKey(ctx.config.seed), {"input": x})["input"])
    if views.ndim == x.ndim:  # one view
      views = views[:, None]
    rows = np.concatenate([x[:, None], views], axis=1)
    if rows.ndim == 4:  # [N, V, H, W] -> one channel
      rows = rows[..., None]
    tiles = einops.rearrange(rows, "n v h w c -> (n v) h w c")
    if jax.process_index() == 0:
      grid.save(tiles, os.path.join(ctx.workdir, "samples", f"{name}_step_{step:06d}.png"),
                ncol=rows.shape[1], value_range=tuple(ec.value_range))
    return {}

  return run
