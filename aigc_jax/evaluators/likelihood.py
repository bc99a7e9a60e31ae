"""Bits per dimension of a whole split under the task's likelihood bound.

The task's `bits_per_dim(variables, batch, rng)` is a stochastic upper bound per example (the
diffusion task's VDM bound draws one time per image); `repeats` passes over the split with fresh
keys average it down. Reports the mean (`bpd`) and its standard error over all (image, repeat)
draws (`bpd_stderr`), as if they were independent: an upper bound on the error of the diffusion
bound's mean, whose draws are stratified over each batch.
"""

import math

import jax
import jax.numpy as jnp

from aigc_jax.errors import ConfigError

DEFAULTS = {"repeats": 1, "augment": ""}


def check(name, ec, config) -> None:
  del config
  if ec.repeats < 1:
    raise ConfigError(f"evals.{name}.repeats={ec.repeats} must be >= 1.")


def make(name, ec, ctx):
  fn = ctx.fn("bits_per_dim", name)

  def sums(variables, batch, rng):
    bpd = fn(variables, batch, rng)
    m = batch["mask"].astype(jnp.float32)
    return {"bpd": jnp.sum(bpd * m), "sq": jnp.sum(jnp.square(bpd) * m), "count": jnp.sum(m)}

  step_fn = jax.jit(sums, in_shardings=(ctx.variables_sharding, ctx.batch_sharding, None))
  ctx.split(ec.split)  # loaded (and checked) before compiling the train step

  def run(variables, step, rng):
    del step
    totals = None
    for r in range(ec.repeats):
      for i, batch in enumerate(ctx.batches(ec.split, ec.batch_size, ec.augment)):
        out = step_fn(variables, batch, jax.random.fold_in(jax.random.fold_in(rng, r), i))
        totals = out if totals is None else jax.tree.map(lambda a, b: a + b, totals, out)
    t = {k: float(v) for k, v in jax.device_get(totals).items()}
    n = t["count"]
    mean = t["bpd"] / n
    var = max(t["sq"] / n - mean**2, 0.0)
    return {"bpd": mean, "bpd_stderr": math.sqrt(var / n)}

  return run
