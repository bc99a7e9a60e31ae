"""Masked language modelling (BERT): predict a random `mlm.select_rate` of the tokens from both
sides. Of the selected tokens, `mask_prob` are replaced by the mask token, `random_prob` by a
random other token and the rest kept, so the encoder cannot tell which tokens are graded; the
loss is the cross-entropy on the selected tokens only.

The model is `gpt` with `causal=False` (the same blocks, no causal mask). The mask token is
`<|mask|>`: taken from the tokenizer when it has one, otherwise added after the data's vocabulary
(one more id; `model.vocab_size` must leave room for it). The extended tokenizer is saved as
DIR/tokenizer.json, which downstream runs name as their `data.tokenizer` so the ids agree.
Selection and corruption are drawn from the step's key every step, so resume is exact; the
`metrics` evaluator reports masked-token loss and accuracy over every token of a split.
"""

import functools
import math
import os
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aigc_jax import evaluators, losses, models
from aigc_jax.data import tokenizers
from aigc_jax.data import tokens
from aigc_jax.errors import ConfigError
from aigc_jax.tasks import Task


def configure(c) -> None:
  c.mlm = ml_collections.ConfigDict({"select_rate": 0.15, "mask_prob": 0.8, "random_prob": 0.1})
  c.evals.samples = evaluators.spec("text_sample")  # a fill-in-the-blanks demo per evaluation


def check(m) -> None:
  if not 0.0 < m.select_rate < 1.0:
    raise ConfigError(f"mlm.select_rate={m.select_rate} must be in (0, 1) (BERT: 0.15).")
  if m.mask_prob < 0 or m.random_prob < 0 or m.mask_prob + m.random_prob > 1.0:
    raise ConfigError(f"mlm.mask_prob={m.mask_prob} and mlm.random_prob={m.random_prob} must be "
                      ">= 0 with a sum <= 1 (BERT: 0.8 and 0.1; the rest are kept).")


def corrupt(rng, ids, valid, m, mask_id: int, vocab: int):
  """(corrupted ids, selected [B, T] bool): selection among `valid` positions, then the
  80/10/10 replacement."""
  k_sel, k_how, k_tok = jax.random.split(rng, 3)
  selected = (jax.random.uniform(k_sel, ids.shape) < m.select_rate) & valid
  how = jax.random.uniform(k_how, ids.shape)
  other = jax.random.randint(k_tok, ids.shape, 0, vocab - 1)
  other = other + (other >= mask_id)  # uniform over every id but the mask
  out = jnp.where(selected & (how < m.mask_prob), mask_id, ids)
  out = jnp.where(selected & (how >= m.mask_prob) & (how < m.mask_prob + m.random_prob),
                  other, out)
  return out, selected


def _valid(batch):
  """Real input positions: a padded evaluation sequence's `target_mask` shifted onto inputs."""
  ids = batch["input"]
  if "target_mask" not in batch:
    return jnp.ones(ids.shape, bool)
  tm = batch["target_mask"]
  return jnp.concatenate([jnp.ones_like(tm[:, :1]), tm[:, :-1]], axis=1)


def make(config) -> Task:
  m = config.mlm
  check(m)
  if not config.data.tokenizer:
    raise ConfigError("task 'mlm' needs token sequences: set data.tokenizer (e.g. 'char').")
  if config.model.name != "gpt" or config.model.get("causal", True):
    raise ConfigError("task 'mlm' needs a bidirectional transformer: model.name='gpt' with "
                      "model.causal=False.")
  tok, mask_id = tokenizers.with_special(tokens.get_tokenizer(config.data), tokenizers.MASK)
  have = config.model.get("vocab_size", 0)
  if have and have < tok.vocab_size:
    raise ConfigError(f"model.vocab_size={have} leaves no id for the mask token: the data's "
                      f"tokenizer plus {tokenizers.MASK} has {tok.vocab_size} ids; set "
                      f"model.vocab_size >= {tok.vocab_size}, or 0 to take it.")
  vocab = have or tok.vocab_size
  model = models.get_model(config.model, vocab_size=vocab)
  if mask_id >= vocab:
    raise ConfigError(f"The mask token's id {mask_id} is outside model.vocab_size={vocab}.")

  def init(rng, spec):
    x = jnp.zeros(spec["input"].shape, jnp.int32)
    return dict(model.init({"params": rng, "dropout": rng}, x, train=False))

  def forward(variables, batch, rng, train, dropout_rng=None):
    ids, valid = batch["input"], _valid(batch)
    x, selected = corrupt(rng, ids, valid, m, mask_id, tok.vocab_size)
    x = jnp.where(valid, x, tokens.PAD)  # padding is hidden from the encoder
    kw = {"rngs": {"dropout": dropout_rng}} if train else {}
    logits = model.apply(variables, x, train=train, **kw)
    ce = losses.softmax_cross_entropy(logits=logits, labels=ids)
    return logits, ce, selected.astype(jnp.float32)

  def loss(params, state, batch, rng, step):
    del step
    k_mask, k_drop = jax.random.split(rng)
    logits, ce, w = forward({"params": params, **state}, batch, k_mask, True, k_drop)
    acc = losses.correct(logits=logits, labels=batch["input"])
    return losses.weighted_mean(ce, w), ({"accuracy": losses.weighted_mean(acc, w)}, {})

  def metrics(variables, batch, rng):
    logits, ce, w = forward(variables, batch, rng, False)
    w = w * batch["mask"][:, None]
    acc = losses.correct(logits=logits, labels=batch["input"])
    return {"loss": jnp.sum(ce * w), "accuracy": jnp.sum(acc * w), "count": jnp.sum(w)}

  def finalize(means):
    return {**means, "perplexity": math.exp(min(means["loss"], 50.0))}

  def encode(variables, ids):
    """Hidden states averaged over real tokens (probes on whole sequences)."""
    h = model.apply(variables, ids, features=True)
    valid = (ids >= 0).astype(h.dtype)[..., None]
    return jnp.sum(h * valid, 1) / jnp.maximum(valid.sum(1), 1.0)

  demo = tokens.load_split(config.data, config.data.eval_split).stream[:model.block_size]
  fns = {"metrics": metrics, "finalize": finalize, "encode": encode,
         "sample_text": functools.partial(_fill_in, model, tok, mask_id, m,
                                          np.asarray(demo, np.int32))}

  def save(workdir):  # downstream runs read the ids, mask included, from here
    tokenizers.save(tok, os.path.join(workdir, tokenizers.WORKDIR_FILE))

  return Task(init=init, loss=loss, eval_fns=fns, input_keys=("input",), save_artifacts=save,
              input_help="The mlm task reads token sequences: set data.tokenizer.")


def _fill_in(model, tok, mask_id, m, ids, variables, rng, **unused) -> str:
  """The start of the evaluation text with a random 15% masked, and the model's fill-in
  (`_` marks masked characters in the middle line; the last line fills every selected token
  with its argmax)."""
  del unused
  x = jnp.asarray(ids[None])
  masked = types.SimpleNamespace(select_rate=m.select_rate, mask_prob=1.0, random_prob=0.0)
  corrupted, selected = corrupt(rng, x, jnp.ones(x.shape, bool), masked, mask_id, tok.vocab_size)
  pred = jnp.argmax(model.apply(variables, corrupted), -1)
  filled = np.asarray(jnp.where(selected, pred, x)[0])
  shown = np.asarray(corrupted[0])
  blank = "".join("_" if t == mask_id else tok.decode([t]) for t in shown)
  right = int(np.sum((filled == ids) & np.asarray(selected[0])))
  return (f"original:\n{tok.decode(ids)}\n\nmasked ({int(selected.sum())} of {len(ids)} "
          f"tokens):\n{blank}\n\nfilled in ({right} right):\n{tok.decode(filled)}\n")
