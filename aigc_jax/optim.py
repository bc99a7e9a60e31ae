"""Optax optimisers and learning-rate schedules built from `config.optim`."""

import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from optax.contrib import MuonDimensionNumbers, muon

from aigc_jax import trees
from aigc_jax.errors import ConfigError

SCHEDULES = ("constant", "cosine", "warmup_cosine", "linear", "wsd")
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "muon")


def make_schedule(c, total_steps: int) -> optax.Schedule:
  """The schedule times the factors of `c.lr_drops` ((step, factor), ...) already reached: e.g.
  prune-then-retrain at a tenth of the learning rate."""
  base = _base_schedule(c, total_steps)
  drops = tuple(tuple(d) for d in c.get("lr_drops", ()))
  for d in drops:
    if len(d) != 2 or not d[1] > 0:
      raise ConfigError(f"optim.lr_drops={drops}: each entry is (step, factor > 0).")
  if not drops:
    return base

  def schedule(step):
    factor = 1.0
    for at, f in drops:
      factor = factor * jnp.where(step >= at, f, 1.0)
    return base(step) * factor
  return schedule


def _base_schedule(c, total_steps: int) -> optax.Schedule:
  if c.schedule not in SCHEDULES:
    raise ConfigError(f"Unknown optim.schedule {c.schedule!r}; valid: {', '.join(SCHEDULES)}.")
  floor = c.lr * c.min_lr_ratio
  if c.schedule == "constant":
    decay = optax.constant_schedule(c.lr)
  elif c.schedule == "linear":
    decay = optax.linear_schedule(c.lr, floor, max(total_steps - c.warmup_steps, 1))
  elif c.schedule == "wsd":  # warmup-stable-decay: flat, then a linear cool-down at the end
    frac = c.get("cooldown_fraction", 0.2)
    if not 0 < frac <= 1:
      raise ConfigError(f"optim.cooldown_fraction={frac} must be in (0, 1]: the share of the "
                        "run spent decaying the learning rate under schedule='wsd'.")
    rest = max(total_steps - c.warmup_steps, 1)
    stable = int(round(rest * (1 - frac)))
    decay = optax.join_schedules([optax.constant_schedule(c.lr),
                                  optax.linear_schedule(c.lr, floor, max(rest - stable, 1))],
                                 [stable])
  else:
    decay = optax.cosine_decay_schedule(c.lr, max(total_steps - c.warmup_steps, 1),
                                        alpha=c.min_lr_ratio)
  if c.warmup_steps <= 0:
    return decay
  warmup = optax.linear_schedule(0.0, c.lr, c.warmup_steps)
  return optax.join_schedules([warmup, decay], [c.warmup_steps])


DECAY = ("matrices", "all")


def _decay_mask(which: str):
  """"matrices": decay only weights of rank >= 2 (kernels, embeddings), never biases or norm
  scales (GPT-2/nanoGPT); "all": every parameter."""
  if which not in DECAY:
    raise ConfigError(f"optim.decay={which!r}; valid: {', '.join(DECAY)}.")
  if which == "all":
    return None
  return lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)


# Muon's matrix view of each selected kernel, by layer name: (reduction axes, output axes);
# other axes are batch axes, orthogonalised one by one (the q, k and v of a fused qkv kernel).
MUON_AXES = {"qkv": ((0,), (2, 3)), "out": ((0, 1), (2,))}


def _muon_dims(pattern: str):
  """Muon dimension numbers for the kernels whose path matches `pattern`, None (AdamW) for the
  rest; stacked (scanned) layers keep their leading layer axis as a batch axis."""
  def dims(params):
    def one(path, leaf):
      name = "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)
      value = leaf.value if isinstance(leaf, nn.Partitioned) else leaf
      if not re.search(pattern, name) or value.ndim < 2:
        return None
      offset = int(isinstance(leaf, nn.Partitioned) and leaf.names[0] == "layers")
      red, out = MUON_AXES.get(name.split("/")[-2], ((0,), (1,)))
      if len(red) + len(out) + offset > value.ndim:
        raise ConfigError(f"Muon cannot view {name} (shape {value.shape}) as a matrix.")
      return MuonDimensionNumbers(tuple(a + offset for a in red), tuple(a + offset for a in out))
    return jax.tree_util.tree_map_with_path(
        one, params, is_leaf=lambda x: isinstance(x, nn.Partitioned))
  return dims


def check_muon(c, params) -> None:
  """A Muon config that selects no matrix trains nothing with Muon: refuse it."""
  dims = _muon_dims(c.muon_params)(params)
  if not any(d is not None for d in jax.tree.leaves(
      dims, is_leaf=lambda x: x is None or isinstance(x, MuonDimensionNumbers))):
    raise ConfigError(f"optim.name='muon' but optim.muon_params={c.muon_params!r} selects no 2-D "
                      f"parameter; parameter paths: {trees.listed(trees.paths(params), 10)}.")


def make_optimizer(c, total_steps: int) -> optax.GradientTransformation:
  """`c` is `config.optim`; the schedule is injected so the learning rate can be logged."""
  if c.name not in OPTIMIZERS:
    raise ConfigError(f"Unknown optim.name {c.name!r}; valid: {', '.join(OPTIMIZERS)}.")
  schedule = make_schedule(c, total_steps)
  mask = _decay_mask(c.get("decay", "matrices"))  # checked here, not when first applied

  def build(learning_rate):
    if c.name == "sgd":
      return optax.sgd(learning_rate)
    if c.name == "momentum":
      return optax.sgd(learning_rate, momentum=c.momentum, nesterov=False)
    if c.name == "adam":
      return optax.adam(learning_rate, b1=c.b1, b2=c.b2, eps=c.eps)
    if c.name == "muon":  # Muon for the hidden matrices, AdamW (its own lr) for the rest
      return muon(learning_rate, beta=c.muon_momentum, ns_steps=c.muon_ns_steps,
                  weight_decay=c.weight_decay,
                  adam_learning_rate=learning_rate * (c.adam_lr / c.lr), adam_b1=c.b1,
                  adam_b2=c.b2, adam_weight_decay=0.0,
                  muon_weight_dimension_numbers=_muon_dims(c.muon_params))
    return optax.adamw(learning_rate, b1=c.b1, b2=c.b2, eps=c.eps, weight_decay=c.weight_decay,
                       mask=mask)

  tx = optax.inject_hyperparams(build)(learning_rate=schedule)
  if c.grad_clip_norm > 0:
    tx = optax.chain(optax.clip_by_global_norm(c.grad_clip_norm), tx)
  return tx


def freeze(tx: optax.GradientTransformation, frozen) -> optax.GradientTransformation:
  """`tx` for the parameters where `frozen` (a bool tree like params) is False; zero updates
  and no optimiser state (no Adam moments) for the others. None: `tx` unchanged."""
  if frozen is None:
    return tx
  labels = jax.tree.map(lambda f: "frozen" if f else "train", frozen)
  return optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, labels)


def learning_rate(opt_state):
  """The current learning rate stored by inject_hyperparams (inside chains, masks and
  multi_transform)."""
  found = []

  def visit(s):
    if hasattr(s, "hyperparams") and "learning_rate" in s.hyperparams:
      found.append(s.hyperparams["learning_rate"])
    return s

  jax.tree.map(visit, opt_state, is_leaf=lambda s: hasattr(s, "hyperparams"))
  if not found:
    raise ValueError("optimizer state has no injected learning rate")
  return found[0]
