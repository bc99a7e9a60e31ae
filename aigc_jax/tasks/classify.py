"""Supervised classification: softmax cross-entropy on batch["input"] -> batch["label"].

Inputs may be token sequences (data.tokenizer with data.packing="examples"): a model with
`vocab_size` 0 then takes the tokenizer's. `classify.input_key` / `classify.label_key` name other
features (a speaker classifier reads "audio" -> "voice").
"""

import jax.numpy as jnp
import ml_collections

from aigc_jax import losses, models
from aigc_jax.data import tokens
from aigc_jax.tasks import Task
from aigc_jax.tasks.lm import vocab_size


def configure(c) -> None:
  c.classify = ml_collections.ConfigDict({"input_key": "input", "label_key": "label"})


def _renamed(batch: dict, x_key: str, y_key: str) -> dict:
  if (x_key, y_key) == ("input", "label"):
    return batch
  return {**batch, "input": batch[x_key], "label": batch[y_key]}


def make(config) -> Task:
  keys = (config.classify.input_key, config.classify.label_key)
  model = models.get_model(config.model)
  if getattr(model, "vocab_size", None) == 0 and config.data.tokenizer:
    model = models.get_model(config.model,
                             vocab_size=vocab_size(config, tokens.get_tokenizer(config.data)))

  def init(rng, batch_spec):
    x = jnp.zeros(batch_spec[keys[0]].shape, batch_spec[keys[0]].dtype)
    return dict(model.init({"params": rng, "dropout": rng}, x, train=False))

  def loss(params, state, batch, rng, step):
    del step
    batch = _renamed(batch, *keys)
    variables = {"params": params, **state}
    if state:  # e.g. batch-norm statistics
      logits, new_state = model.apply(variables, batch["input"], train=True,
                                      rngs={"dropout": rng}, mutable=list(state))
    else:
      logits, new_state = model.apply(variables, batch["input"], train=True,
                                      rngs={"dropout": rng}), {}
    mask = batch.get("mask")
    ce = losses.softmax_cross_entropy(logits=logits, labels=batch["label"])
    acc = losses.correct(logits=logits, labels=batch["label"])
    return losses.weighted_mean(ce, mask), ({"accuracy": losses.weighted_mean(acc, mask)},
                                            dict(new_state))

  def predict(variables, x):
    return model.apply(variables, x, train=False)

  def metrics(variables, batch, rng):
    del rng
    batch = _renamed(batch, *keys)
    logits = predict(variables, batch["input"])
    mask = batch["mask"].astype(jnp.float32)
    ce = losses.softmax_cross_entropy(logits=logits, labels=batch["label"])
    acc = losses.correct(logits=logits, labels=batch["label"])
    return {"loss": jnp.sum(ce * mask), "accuracy": jnp.sum(acc * mask), "count": jnp.sum(mask)}

  fns = {"metrics": metrics, "predict": predict}
  if hasattr(model, "features"):  # e.g. an encoder with a head: probes see the fine-tuned code
    fns["encode"] = lambda variables, x: model.apply(variables, x, method=model.features)
  return Task(init=init, loss=loss, eval_fns=fns, input_keys=keys)
