"""Contrastive learning (SimCLR, Chen et al. 2020): two augmented views of every example, an
encoder and a projector, and an InfoNCE loss whose negatives span the global batch.

The views come from `config.augment` ("views(2)|..."), so batch["input"] is [B, 2, ...]. The loss
is written on global arrays inside the one jitted step: with a data-parallel mesh the similarity
matrix pairs every device's examples with every other's (XLA inserts the all-gather), so the
negatives are the global batch's, and 1 or 8 devices give the same loss (tested).

`contrastive.negatives`:
- "all": NT-Xent as SimCLR defines it (optax.losses.ntxent): each of the 2B projections has one
  positive (its other view) and 2B - 2 negatives, averaged over all 2B anchors.
- "cross_view": view 1 against view 2 only (B - 1 negatives, the other view's), the MNIST-1D
  self-supervised notebook's loss.
"""

import jax.numpy as jnp
import ml_collections
import optax

from aigc_jax import losses, models
from aigc_jax.options import augment as augment_lib
from aigc_jax.errors import ConfigError
from aigc_jax.tasks import Task

NEGATIVES = ("all", "cross_view")


def configure(c) -> None:
  c.contrastive = ml_collections.ConfigDict({"temperature": 0.5, "negatives": "all"})


def _unit(z):
  return z / jnp.linalg.norm(z, axis=-1, keepdims=True).clip(1e-12)


def info_nce(z_B2D, temperature: float, negatives: str):
  """Mean InfoNCE of projections z [B, 2, D] (cosine similarity / temperature)."""
  z = z_B2D.astype(jnp.float32)
  b = z.shape[0]
  if negatives == "all":
    labels = jnp.repeat(jnp.arange(b), 2)
    return optax.losses.ntxent(z.reshape(2 * b, -1), labels, temperature)
  z = _unit(z)
  logits = z[:, 0] @ z[:, 1].T / temperature
  return jnp.mean(losses.softmax_cross_entropy(logits=logits, labels=jnp.arange(b)))


def make(config) -> Task:
  cc = config.contrastive
  if cc.negatives not in NEGATIVES:
    raise ConfigError(f"contrastive.negatives={cc.negatives!r}; valid: {', '.join(NEGATIVES)}.")
  if cc.temperature <= 0:
    raise ConfigError(f"contrastive.temperature={cc.temperature} must be positive (0.5, 0.1).")
  aug = augment_lib.parse(config.augment)
  if aug.views() != 2:
    raise ConfigError(f"task 'contrastive' needs two views of every example: start "
                      f"config.augment with views(2) (got {config.augment!r}).")
  if not aug.randomises_views():
    raise ConfigError(f"config.augment={config.augment!r} makes two identical views (no random "
                      "op after views(2)), so the loss has nothing to learn; add e.g. "
                      "random_crop(2) or circular_shift(10) after views(2).")
  model = models.get_model(config.model)
  if not hasattr(model, "project"):
    raise ConfigError("task 'contrastive' needs model.name='contrastive' (an encoder with a "
                      "projection head).")

  def flat_views(x):  # [B, 2, ...] -> [2B, ...]: one encoder pass over both views
    return x.reshape((-1,) + x.shape[2:])

  def init(rng, spec):
    x = spec["input"]
    if x.ndim < 3 or x.shape[1] != 2:
      raise ConfigError(f"task 'contrastive' expects inputs [B, 2, ...] after views(2); got "
                        f"{x.shape}.")
    both = jnp.zeros((x.shape[0] * 2,) + tuple(x.shape[2:]), jnp.float32)
    return dict(model.init({"params": rng}, both))

  def project_views(variables, x):
    z = model.apply(variables, flat_views(x))
    return z.reshape(x.shape[:2] + z.shape[1:])

  def loss(params, state, batch, rng, step):
    del rng, step
    z = project_views({"params": params, **state}, batch["input"])
    z_n = _unit(z)
    agreement = jnp.mean(jnp.sum(z_n[:, 0] * z_n[:, 1], axis=-1))
    return info_nce(z, cc.temperature, cc.negatives), ({"positive_cosine": agreement}, {})

  def encode(variables, x):
    return model.apply(variables, x, method=model.features)

  def project(variables, x):
    return model.apply(variables, x)

  return Task(init=init, loss=loss, input_keys=("input",),
              eval_fns={"encode": encode, "project": project})
