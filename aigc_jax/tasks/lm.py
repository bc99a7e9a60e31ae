"""Next-token prediction: cross-entropy of batch["input"] -> batch["target"] (token sequences).

Evaluation sums over real tokens only (eval padding `mask` per sequence, `target_mask` per
token), so the validation loss covers the whole split exactly once.
"""

import jax.numpy as jnp

from aigc_jax import losses, models
from aigc_jax.data import lm
from aigc_jax.errors import ConfigError
from aigc_jax.tasks import Task


def vocab_size(config) -> int:
  """model.vocab_size, or the data's tokenizer's when it is 0; too small is an error."""
  if not config.data.tokenizer:
    raise ConfigError("task 'lm' needs token sequences: set data.tokenizer (e.g. 'char').")
  needed = lm.get_tokenizer(config.data).vocab_size
  have = config.model.get("vocab_size", 0)
  if have and have < needed:
    raise ConfigError(f"model.vocab_size={have} is smaller than the tokenizer's vocabulary "
                      f"({needed}); set it to >= {needed} or 0 to use the tokenizer's.")
  return have or needed


def make(config) -> Task:
  model = models.get_model(config.model, vocab_size=vocab_size(config))

  def init(rng, batch_spec):
    x = jnp.zeros(batch_spec["input"].shape, jnp.int32)
    return dict(model.init({"params": rng, "dropout": rng}, x, train=False))

  def loss(params, state, batch, rng):
    logits = model.apply({"params": params, **state}, batch["input"], train=True,
                         rngs={"dropout": rng})
    ce = losses.softmax_cross_entropy(logits=logits, labels=batch["target"])
    return losses.weighted_mean(ce, batch.get("target_mask")), ({}, {})

  def predict(variables, tokens):
    return model.apply(variables, tokens, train=False)

  def eval_step(variables, batch):
    logits = predict(variables, batch["input"])
    ce = losses.softmax_cross_entropy(logits=logits, labels=batch["target"])
    w = batch["mask"][:, None].astype(jnp.float32) * jnp.ones_like(ce)
    if "target_mask" in batch:
      w = w * batch["target_mask"]
    return {"loss": jnp.sum(ce * w), "count": jnp.sum(w)}

  return Task(init=init, loss=loss, eval_step=eval_step, eval_fns={"predict": predict},
              input_keys=("input", "target"))
