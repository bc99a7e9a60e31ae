"""The decoder over a 2-d latent grid (Kingma & Welling 2014, fig. 4): z at the Gaussian
quantiles of an n x n lattice, decoded, as DIR/samples/NAME_step_N.png."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from aigc_jax.errors import ConfigError
from aigc_jax.evaluators import grid

DEFAULTS = {"size": 20, "value_range": (0.0, 1.0)}


def make(name, ec, ctx):
  decode = ctx.fn("decode", name)
  dim = ctx.config.model.get("latent_dim", 0)
  if dim != 2:
    raise ConfigError(f"Evaluator {name!r} (latent_walk) draws a 2-d latent space, but "
                      f"model.latent_dim={dim}; set it to 2 or remove the evaluator.")
  q = scipy.stats.norm.ppf(np.linspace(0.5 / ec.size, 1 - 0.5 / ec.size, ec.size))
  # Rows go down in z2, columns right in z1, as the paper draws it.
  z = np.stack(np.meshgrid(q, q[::-1]), axis=-1).reshape(-1, 2).astype(np.float32)
  fn = jax.jit(decode)

  def run(variables, step, rng):
    del rng
    images = jax.device_get(fn(variables, jnp.asarray(z)))
    if jax.process_index() == 0:
      grid.save(images, os.path.join(ctx.workdir, "samples", f"{name}_step_{step:06d}.png"),
                ncol=ec.size, value_range=tuple(ec.value_range))
    return {}

  return run
