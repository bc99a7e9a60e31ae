"""Optax optimisers and learning-rate schedules built from `config.optim`."""

import jax
import optax

from aigc_jax.errors import ConfigError

SCHEDULES = ("constant", "cosine", "warmup_cosine", "linear")
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")


def make_schedule(c, total_steps: int) -> optax.Schedule:
  if c.schedule not in SCHEDULES:
    raise ConfigError(f"Unknown optim.schedule {c.schedule!r}; valid: {', '.join(SCHEDULES)}.")
  floor = c.lr * c.min_lr_ratio
  if c.schedule == "constant":
    decay = optax.constant_schedule(c.lr)
  elif c.schedule == "linear":
    decay = optax.linear_schedule(c.lr, floor, max(total_steps - c.warmup_steps, 1))
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
