"""Inputs beside their reconstructions, as DIR/samples/NAME_step_N.png.

Rows alternate: originals, (the corrupted inputs, when the task denoises: `augment` writing
"corrupted"), reconstructions; the same first `num` examples of the split at every evaluation.
A task whose `reconstruct` returns a dict of image batches (MAE: masked input, reconstruction)
gets a row per entry after the originals.
"""

import os

import einops
import jax
import numpy as np

from aigc_jax import evaluators
from aigc_jax.errors import ConfigError
from aigc_jax.evaluators import grid

DEFAULTS = {
    "num": 32,  # examples shown
    "ncol": 8,  # examples per row
    "value_range": (0.0, 1.0),  # of the data and of the reconstructions
    "augment": "",  # e.g. the corruption of a denoising autoencoder, with a fixed key
}


def check(name, ec, config) -> None:
  if not 0 < ec.ncol <= min(ec.num, ec.batch_size):
    raise ConfigError(f"evals.{name}: ncol={ec.ncol} must be in [1, num={ec.num}] (and at most "
                      f"the batch size {ec.batch_size}).")


def make(name, ec, ctx):
  reconstruct = ctx.fn("reconstruct", name)
  ctx.split(ec.split)
  fn = jax.jit(reconstruct)
  n = min(ec.num, ec.batch_size) // ec.ncol * ec.ncol  # whole rows

  def run(variables, step, rng):
    batch = next(ctx.batches(ec.split, ec.batch_size, ec.augment))
    recon = fn(variables, batch, rng)
    if isinstance(recon, dict):  # e.g. {"masked": ..., "reconstruction": ...} (MAE)
      rows = [batch["input"], *recon.values()]
    else:
      rows = [batch["input"]] + ([batch["corrupted"]] if "corrupted" in batch else []) + [recon]
    imgs = [evaluators.to_host(r)[:n].reshape((n,) + _hwc(batch["input"].shape[1:]))
            for r in rows]
    # Interleave row blocks: a row of originals, then the same examples reconstructed.
    blocks = [einops.rearrange(x, "(r q) h w c -> r q h w c", q=ec.ncol) for x in imgs]
    tiled = einops.rearrange(np.stack(blocks, axis=1), "r k q h w c -> (r k q) h w c")
    if jax.process_index() == 0:
      grid.save(tiled, os.path.join(ctx.workdir, "samples", f"{name}_step_{step:06d}.png"),
                ncol=ec.ncol, value_range=tuple(ec.value_range))
    return {}

  return run


def _hwc(shape) -> tuple:
  return tuple(shape) + (1,) if len(shape) == 2 else tuple(shape)
