"""A grid of samples from fixed noise (the same at every evaluation), as DIR/samples/NAME_step_N.png.

For a class-conditional model (the task's `labels` function) each row is one class.
"""

import os

import jax

from aigc_jax.evaluators import grid

DEFAULTS = {
    "num": 64,  # images in the grid
    "ncol": 8,  # images per row
    "value_range": (-1.0, 1.0),  # of the samples: mapped to black..white
    "seed_offset": 1,  # noise key PRNGKey(seed + seed_offset)
}


def make(name, ec, ctx):
  sample = ctx.fn("sample", name)
  labels = ctx.task.eval_fns.get("labels", lambda n, grouped: None)(ec.num, True)
  key = jax.random.PRNGKey(ctx.config.seed + ec.seed_offset)
  # The key is an argument: a closed-over array would carry its device into the call.
  draw = jax.jit(lambda v, k: sample(v, k, ec.num, labels))

  def run(variables, step, rng):
    del rng
    images = jax.device_get(draw(variables, key))
    if jax.process_index() == 0:
      grid.save(images, os.path.join(ctx.workdir, "samples", f"{name}_step_{step:06d}.png"),
                ncol=ec.ncol, value_range=tuple(ec.value_range))
    return {}

  return run
