"""Magnitude pruning (Han et al. 2015) as an option of the one train step.

`config.prune.enabled` gives the train state a boolean mask per parameter (all kept at first;
checkpointed with the state). Each step zeroes the gradient of pruned weights before the
optimiser and zeroes the weights after its update, so a pruned weight stays exactly 0: neither
momentum nor weight decay can revive it. `prune.rounds = ((step, sparsity), ...)` prunes, at the
start of each listed step, the smallest-magnitude weights among those matching `prune.params`
(kernels by default) until `sparsity` of them are zero: over all of them at once
(`scope="global"`) or layer by layer (`"layer"`). Between rounds the network retrains; with
`optim.lr_drops` at the first round, at a lower rate (Han et al.: about a tenth). Rounds are a
function of the step, so a resumed run prunes at the same points.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np

from aigc_jax import transfer
from aigc_jax.errors import ConfigError

SCOPES = ("global", "layer")


def enabled(c) -> bool:
  return c is not None and bool(c.get("enabled", False))


def rounds(c) -> dict[int, float]:
  """{step: sparsity}, checked: steps increase, sparsities in [0, 1) never decrease."""
  out, last_step, last_s = {}, -1, 0.0
  for r in c.rounds:
    if len(r) != 2:
      raise ConfigError(f"prune.rounds={c.rounds}: each round is (step, sparsity).")
    step, s = int(r[0]), float(r[1])
    if not 0.0 <= s < 1.0:
      raise ConfigError(f"prune.rounds: sparsity {s} is outside [0, 1): it is the fraction of "
                        "the pruned weights set to zero (0.92 keeps 8%).")
    if step <= last_step or s < last_s:
      raise ConfigError(f"prune.rounds={c.rounds}: steps must increase and sparsities must not "
                        "decrease (a pruned weight is never revived).")
    out[step], last_step, last_s = s, step, s
  if not out:
    raise ConfigError("prune.enabled with no prune.rounds: give ((step, sparsity), ...).")
  if c.scope not in SCOPES:
    raise ConfigError(f"prune.scope={c.scope!r}; valid: {', '.join(SCOPES)}.")
  return out


def prunable(c, abstract_params):
  """A bool per parameter: matrices and kernels (ndim >= 2) whose path matches prune.params."""
  try:
    pattern = re.compile(c.params)
  except re.error as e:
    raise ConfigError(f"prune.params={c.params!r} is not a regular expression: {e}.") from None
  paths = transfer.param_paths(abstract_params)
  leaves = jax.tree.leaves(abstract_params)
  hits = [bool(pattern.search(p)) and x.ndim >= 2 for p, x in zip(paths, leaves)]
  if not any(hits):
    raise ConfigError(f"prune.params={c.params!r} matches no matrix or kernel; parameter paths: "
                      f"{', '.join(paths[:12])}{' ...' if len(paths) > 12 else ''}.")
  return jax.tree.unflatten(jax.tree.structure(abstract_params), hits)


def _keep_largest(values: jax.Array, sparsity: float) -> jax.Array:
  """A mask keeping exactly the largest (1 - sparsity) of `values` (ties by position)."""
  k = int(round(sparsity * values.size))
  order = jnp.argsort(values, stable=True)
  return jnp.ones(values.size, bool).at[order[:k]].set(False)


def prune(params, masks, which, sparsity: float, scope: str):
  """New masks: the smallest-magnitude weights of the `which` parameters pruned until `sparsity`
  of them (of all of them, or of each) are zero; already-pruned weights are 0, so they stay."""
  leaves, tree = jax.tree.flatten(params)
  mask_leaves = jax.tree.leaves(masks)
  sel = jax.tree.leaves(which)
  mags = [jnp.abs(p).ravel() * m.ravel() for p, m in zip(leaves, mask_leaves)]
  new = list(mask_leaves)
  if scope == "global":
    idx = [i for i, s in enumerate(sel) if s]
    keep = _keep_largest(jnp.concatenate([mags[i] for i in idx]), sparsity)
    splits = np.cumsum([mags[i].size for i in idx])[:-1]
    for i, part in zip(idx, jnp.split(keep, splits)):
      new[i] = part.reshape(leaves[i].shape)
  else:
    for i, s in enumerate(sel):
      if s:
        new[i] = _keep_largest(mags[i], sparsity).reshape(leaves[i].shape)
  return jax.tree.unflatten(tree, new)


def kept_fractions(masks, which) -> dict[str, float]:
  """{parameter path: fraction kept} for the prunable parameters, and "all" over them."""
  paths = transfer.param_paths(masks)
  out, kept, total = {}, 0, 0
  for p, m, s in zip(paths, jax.tree.leaves(masks), jax.tree.leaves(which)):
    if s:
      m = np.asarray(m)
      out[p] = float(m.mean())
      kept, total = kept + int(m.sum()), total + m.size
  out["all"] = kept / max(total, 1)
  return out
