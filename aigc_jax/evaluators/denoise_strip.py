"""A denoising strip, as DIR/samples/NAME_step_N.png: for a few held-out images, x_t at several
noise levels t (top row of each pair) and the model's estimate of x0 from it (bottom row).

The picture shows what the network has learnt at each noise level: near t = 0 it copies, in the
middle it sharpens a blurry digit, near t = 1 it draws the data's mean. Rows read left to right
from clean to pure noise. The noise is fixed, so strips compare across steps. Needs the task's
`denoise(variables, x0, labels, t, rng) -> (x_t, x0_hat)`.
"""

import os

import einops
import jax
import jax.numpy as jnp
import numpy as np

from aigc_jax import evaluators
from aigc_jax.errors import ConfigError
from aigc_jax.evaluators import grid

DEFAULTS = {
    "num": 4,  # images, each a pair of rows
    "times": (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),  # noise levels: the columns
    "value_range": (-1.0, 1.0),
    "seed_offset": 3,
}


def check(name, ec, config) -> None:
  del config
  if not ec.times or any(not 0.0 <= t <= 1.0 for t in ec.times):
    raise ConfigError(f"evals.{name}.times={tuple(ec.times)} must be non-empty, each in [0, 1].")
  if not 0 < ec.num <= ec.batch_size:
    raise ConfigError(f"evals.{name}.num={ec.num} must be in [1, batch_size={ec.batch_size}].")


def make(name, ec, ctx):
  denoise = ctx.fn("denoise", name)
  ctx.split(ec.split)
  times = np.asarray(ec.times, np.float32)
  key = jax.random.PRNGKey(ctx.config.seed + ec.seed_offset)

  @jax.jit
  def strip(variables, x0, labels, key):
    # One noise draw for the whole strip: the columns differ only in t.
    return jax.vmap(lambda t: denoise(variables, x0, labels, t, key))(jnp.asarray(times))

  def run(variables, step, rng):
    del rng
    batch = next(ctx.batches(ec.split, ec.batch_size))
    x0 = evaluators.to_host(batch["input"])[:ec.num]
    # The example's condition: its caption (text to image) or class label, if it has one.
    cond = next((k for k in ("caption", "label") if k in batch), None)
    labels = None if cond is None else evaluators.to_host(batch[cond])[:ec.num]
    xt, x0_hat = jax.device_get(strip(variables, x0, labels, key))  # [T, N, H, W, C] each
    rows = einops.rearrange(np.stack([xt, x0_hat]), "k t n h w c -> (n k t) h w c")
    if jax.process_index() == 0:
      grid.save(rows, os.path.join(ctx.workdir, "samples", f"{name}_step_{step:06d}.png"),
                ncol=len(times), value_range=tuple(ec.value_range))
    return {}

  return run
