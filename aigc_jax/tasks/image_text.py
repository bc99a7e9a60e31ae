"""Contrastive image-text pretraining: matching images (batch["input"]) with their captions
(batch["caption"], token ids) across the global batch (CLIP; SigLIP).

The loss is written on global arrays inside the one jitted step, so with a data-parallel mesh
every image meets every caption of the global batch (XLA gathers the embeddings) and 1 or 8
devices give the same loss. `image_text.loss`:
- "softmax": CLIP's symmetric InfoNCE, cross-entropy image -> caption and caption -> image over
  the B x B logits, averaged;
- "sigmoid": SigLIP's, every image-caption pair an independent binary match (the diagonal
  positive), summed over pairs and divided by B; a learned bias starts the logits at -10.
The logit scale is learned; `scale_init` 0 takes the loss's paper value (1/0.07 for softmax,
10 for sigmoid). `image_text.negatives` names a batch feature of hard-negative caption ids (a
caption the image contradicts, e.g. its digits swapped; data.text_key 'caption,negative'): every
image then also meets every negative of the global batch (B x 2B logits; Yuksekgonul et al. 2023),
which captions never matched to an image only add to the image -> caption side (they did not
teach a mean-pooled tower word order; a causal one read at its last token learns it without
them: docs/results.md). Evaluators: zero_shot, retrieval (embed_image / embed_text) and
linear_probe (encode: the image tower's features).
"""

import math
import os

import jax
import jax.numpy as jnp
import ml_collections

from aigc_jax import losses, models
from aigc_jax.data import tokenizers, tokens
from aigc_jax.errors import ConfigError
from aigc_jax.tasks import Task
from aigc_jax.tasks.lm import vocab_size

LOSSES = ("softmax", "sigmoid")
_SCALE_INIT = {"softmax": math.log(1 / 0.07), "sigmoid": math.log(10.0)}
INPUT_HELP = ("task 'image_text' reads images as 'input' and caption token ids as 'caption': "
              "data.text_key='caption', data.tokens_key='caption', data.packing='examples', a "
              "data.tokenizer, and rename(image='input') in data.preprocess.")


def configure(c) -> None:
  c.image_text = ml_collections.ConfigDict({"loss": "softmax", "scale_init": 0.0,
                                            "bias_init": -10.0, "negatives": ""})


def contrastive_loss(logits_BM, kind: str):
  """The mean loss of [B, M >= B] image-caption logits: the first B columns are the images' own
  captions (the diagonal the true pairs), any further columns captions no image matches."""
  logits = logits_BM.astype(jnp.float32)
  b, m = logits.shape
  if kind == "softmax":
    labels = jnp.arange(b)
    return 0.5 * (jnp.mean(losses.softmax_cross_entropy(logits=logits, labels=labels)) +
                  jnp.mean(losses.softmax_cross_entropy(logits=logits[:, :b].T, labels=labels)))
  signs = 2.0 * jnp.eye(b, m) - 1.0
  return -jnp.sum(jax.nn.log_sigmoid(signs * logits)) / b


def make(config) -> Task:
  it = config.image_text
  if it.loss not in LOSSES:
    raise ConfigError(f"image_text.loss={it.loss!r}; valid: {', '.join(LOSSES)}.")
  if not config.data.tokenizer:
    raise ConfigError("task 'image_text' needs caption tokens: " + INPUT_HELP)
  overrides = {"logit_scale_init": it.scale_init or _SCALE_INIT[it.loss],
               "logit_bias_init": it.bias_init if it.loss == "sigmoid" else 0.0}
  tok = tokens.get_tokenizer(config.data)
  if config.model.get("vocab_size", 0) == 0:
    overrides["vocab_size"] = vocab_size(config, tok)
  model = models.get_model(config.model, **overrides)
  if not hasattr(model, "embed_text"):
    raise ConfigError("task 'image_text' needs model.name='clip' (an image and a text encoder).")
  if config.data.seq_len > model.context:
    raise ConfigError(f"data.seq_len={config.data.seq_len} is longer than the text model's "
                      f"context (model.text.block_size={model.context}); lower data.seq_len or "
                      "raise model.text.block_size.")

  neg = it.negatives
  if neg in ("input", "caption"):
    raise ConfigError(f"image_text.negatives={neg!r} names the images or their captions; name "
                      "the hard-negative caption ids (e.g. 'negative', with data.text_key and "
                      "data.tokens_key 'caption,negative').")
  if neg and neg not in [k for _, k in tokens.text_keys(config.data)]:
    raise ConfigError(f"image_text.negatives={neg!r} is not tokenised: add it to data.text_key "
                      f"and data.tokens_key (e.g. 'caption,{neg}').")

  def init(rng, spec):
    x = jnp.zeros(spec["input"].shape, jnp.float32)
    t = jnp.zeros(spec["caption"].shape, jnp.int32)
    return dict(model.init({"params": rng}, x, t))

  def loss(params, state, batch, rng, step):
    del rng, step
    texts = batch["caption"]
    if neg:
      texts = jnp.concatenate([texts, batch[neg]], axis=0)
    logits = model.apply({"params": params, **state}, batch["input"], texts)
    b = logits.shape[0]
    diag = jnp.diagonal(logits)
    metrics = {
        "accuracy_i2t": jnp.mean(jnp.argmax(logits, axis=1) == jnp.arange(b)),
        "logit_scale": jnp.exp(params["logit_scale"]),
        "positive_logit": jnp.mean(diag),
    }
    if neg:  # how often an image prefers its caption to its own hard negative
      metrics["negative_accuracy"] = jnp.mean(diag > jnp.diagonal(logits[:, b:]))
    return contrastive_loss(logits, it.loss), (metrics, {})

  def apply(method):
    return lambda variables, x: model.apply(variables, x, method=method)

  def save(workdir):  # prompts typed later (a notebook, zero-shot) are encoded with it
    tokenizers.save(tok, os.path.join(workdir, tokenizers.WORKDIR_FILE))

  return Task(init=init, loss=loss, input_keys=("input", "caption") + ((neg,) if neg else ()),
              input_help=INPUT_HELP,
              save_artifacts=save,
              eval_fns={"encode": apply(model.image_features),
                        "embed_image": apply(model.embed_image),
                        "embed_text": apply(model.embed_text)})
