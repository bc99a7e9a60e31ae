"""Pure loss functions: keyword inputs, per-example values unless the name says mean."""

import jax
import jax.numpy as jnp
import optax


def softmax_cross_entropy(*, logits, labels):
  """Per-example cross-entropy with integer labels; computed in float32 for stability."""
  return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)


def z_loss(*, logits):
  """Per-position log(Z)^2 of the softmax normaliser (PaLM's auxiliary loss)."""
  return jnp.square(jax.nn.logsumexp(logits.astype(jnp.float32), axis=-1))


def correct(*, logits, labels):
  """Per-example 1.0 where the arg-max class equals the label."""
  return (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)


def weighted_mean(values, weights=None):
  """Mean over examples; `weights` (e.g. an eval padding mask) zero out padded rows."""
  if weights is None:
    return jnp.mean(values)
  weights = weights.astype(values.dtype)
  return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def l2_norm(tree):
  return optax.tree.norm(jax.tree.map(lambda x: x.astype(jnp.float32), tree))
