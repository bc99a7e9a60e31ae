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


import jax
import jax.numpy as jnp
import numpy as np

from aigc_jax import trees
from aigc_jax.errors import ConfigError
from aigc_jax.options import Active

SCOPES = ("global", "layer")
DEFAULTS = {
    # At each (step, sparsity) of `rounds`, the smallest weights among the kernels matching
    # `params` are zeroed (over all of them: scope "global", or per layer: "layer") and stay
    # zero; masks live in the train state and its checkpoints.
    "prune": {"enabled": False, "rounds": (), "scope": "global", "params": "kernel$"},
}


def enabled(c) -> bool:
  return c is not None and bool(c.get("enabled", False))


def check(config) -> None:
  if enabled(config.prune):
    rounds(config.prune)


def setup(config, run):
  c = config.prune
  if not enabled(c):
    return None
  if run.task.players:
    raise ConfigError("prune.enabled is for single-loss tasks; a multi-player task (GAN) "
                      "has no single weight budget.")
  at, cache = rounds(c), {}

  def which(abstract_params):
    cache["prunable"] = prunable(c, abstract_params)
    return cache["prunable"]

  def before_step(step: int, state):
    """A round at `step`: a function of the step, so a resumed run prunes at the same points."""
    if step not in at:
      return state, None
    if "fn" not in cache:
      shardings = jax.tree.map(lambda x: x.sharding, state)
      cache["fn"] = jax.jit(
          lambda s, sparsity: s.replace(**_pruned(s, cache["prunable"], sparsity, c.scope)),
          static_argnums=1, out_shardings=shardings, donate_argnums=0)
    state = cache["fn"](state, at[step])
    kept = kept_fractions(jax.device_get(state.masks), cache["prunable"])
    print(f"step {step}: pruned to sparsity {at[step]:.3f} "
          f"(kept {kept['all']:.2%} of the prunable weights)", flush=True)
    return state, {"sparsity": at[step], "kept": kept["all"]}

  def summary(state, num_steps: int) -> dict:
    del num_steps
    kept = kept_fractions(jax.device_get(state.masks), cache["prunable"])
    return {"sparsity": 1.0 - kept["all"], "kept_by_layer": kept}

  return Active(name="prune", masks=which, before_step=before_step, summary=summary,
                grads=_masked, params=_masked)


def _masked(state, tree):
  """Pruned weights get no gradient before the optimiser, and stay exactly zero after it
  whatever momentum or weight decay would do."""
  return jax.tree.map(lambda x, m: jnp.where(m, x, 0), tree, state.masks)


def _pruned(state, prunable_, sparsity: float, scope: str) -> dict:
  masks = prune(state.params, state.masks, prunable_, sparsity, scope)
  params = jax.tree.map(lambda p, m: jnp.where(m, p, 0), state.params, masks)
  return {"masks": masks, "params": params}


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
  return trees.select(c.params, abstract_params, "prune.params", lambda x: x.ndim >= 2,
                      "matrix or kernel")


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
  paths = trees.paths(masks)
  out, kept, total = {}, 0, 0
  for p, m, s in zip(paths, jax.tree.leaves(masks), jax.tree.leaves(which)):
    if s:
      m = np.asarray(m)
      out[p] = float(m.mean())
      kept, total = kept + int(m.sum()), total + m.size
  out["all"] = kept / max(total, 1)
  return out
