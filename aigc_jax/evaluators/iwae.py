"""The importance-weighted bound (Burda et al. 2016) as the test log-likelihood estimate.

  log p(x) >= IWAE_k = E[log (1/k) sum_i w_i],  w_i = p(x, z_i) / q(z_i | x),  z_i ~ q(z|x)

With k = 1 it is the ELBO; it tightens as k grows. Reported in nats per example: `nll`
(-IWAE_k, the NLL estimate) and `neg_elbo` (-mean_i log w_i over the same k samples, a
low-variance ELBO). The k samples are drawn `chunk` at a time inside one jitted scan with a
running log-sum-exp, so memory holds batch x chunk decoder outputs, never batch x k.
"""

import math

import jax
import jax.numpy as jnp

from aigc_jax.errors import ConfigError

DEFAULTS = {"k": 1000, "chunk": 100, "augment": ""}


def check(name, ec, config) -> None:
  if ec.k < 1 or ec.chunk < 1 or ec.k % ec.chunk:
    raise ConfigError(f"evals.{name}: k={ec.k} must be a positive multiple of chunk={ec.chunk}.")


def make(name, ec, ctx):
  log_weights = ctx.fn("log_weights", name)
  ctx.split(ec.split)
  n_chunks = ec.k // ec.chunk

  @jax.jit
  def bounds(variables, batch, rng):
    def body(carry, i):
      lse, total = carry
      lw = log_weights(variables, batch, jax.random.fold_in(rng, i), ec.chunk)
      return (jnp.logaddexp(lse, jax.nn.logsumexp(lw, axis=1)), total + jnp.sum(lw, axis=1)), None

    b = batch["input"].shape[0]
    init = (jnp.full((b,), -jnp.inf), jnp.zeros((b,)))
    (lse, total), _ = jax.lax.scan(body, init, jnp.arange(n_chunks))
    m = batch["mask"].astype(jnp.float32)
    iwae = lse - math.log(ec.k)
    return {"nll": -jnp.sum(iwae * m), "neg_elbo": -jnp.sum(total / ec.k * m),
            "count": jnp.sum(m)}

  def run(variables, step, rng):
    del step
    sums = None
    for i, batch in enumerate(ctx.batches(ec.split, ec.batch_size, ec.augment)):
      out = bounds(variables, batch, jax.random.fold_in(rng, i))
      sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
    sums = {k: float(v) for k, v in jax.device_get(sums).items()}
    count = sums.pop("count")
    out = {k: v / count for k, v in sums.items()}
    out["gap"] = out["neg_elbo"] - out["nll"]  # >= 0: how much tighter the bound is
    return out

  return run
