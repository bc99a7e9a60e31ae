"""Next-token prediction: cross-entropy of batch["input"] -> batch["target"] (token sequences).

Optional z-loss (`tokens.z_loss` x log(Z)^2, PaLM) keeps the softmax normaliser near 1 in low
precision. Evaluation sums over real tokens only (eval padding `mask` per sequence, `target_mask`
per token), so the validation loss covers the whole split exactly once; it reports loss (nats per
token), perplexity, bits per token and bits per character of the original text.
"""

import functools
import math
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aigc_jax import evaluators, losses, models
from aigc_jax.data import tokenizers
from aigc_jax.data import tokens
from aigc_jax.errors import ConfigError
from aigc_jax.samplers import text
from aigc_jax.tasks import Task


def configure(c) -> None:
  """The lm section, and a text sample per evaluation (evaluator "samples")."""
  c.lm = ml_collections.ConfigDict({"z_loss": 0.0})  # weight of log(Z)^2 (1e-4 in PaLM)
  c.evals.samples = evaluators.spec("text_sample")


def vocab_size(config, tok) -> int:
  """model.vocab_size, or the tokenizer's when it is 0; too small is an error."""
  needed = tok.vocab_size
  have = config.model.get("vocab_size", 0)
  if have and have < needed:
    raise ConfigError(f"model.vocab_size={have} is smaller than the tokenizer's vocabulary "
                      f"({needed}); set it to >= {needed} or 0 to use the tokenizer's.")
  return have or needed


def token_sequences(batch) -> dict:
  """A batch's model input, targets, per-token mask (or None) and conditioning (model kwargs)."""
  return {"input": batch["input"], "target": batch["target"],
          "target_mask": batch.get("target_mask"), "cond": {}}


def make_task(config, vocab: int, tokens_per_char: float = 1.0, tok=None, *,
              sequences=token_sequences, input_keys=("input", "target"), model=None,
              z_loss: float | None = None) -> Task:
  """The task for a model with vocabulary `vocab`, independent of any data set (benchmarks).

  sequences(batch) -> {input, target, target_mask, cond} turns a batch into what the categorical
  next-step loss reads, computed inside the step: other sequence kinds (quantised audio with a
  voice and a spectrogram as `cond`) reuse the loss, the metrics and the finalize."""
  model = model or models.get_model(config.model, vocab_size=vocab)
  z_weight = config.lm.z_loss if z_loss is None else z_loss

  def init(rng, batch_spec):
    batch = {k: jnp.zeros(v.shape, v.dtype) for k, v in batch_spec.items()}
    seq = sequences(batch)
    return dict(model.init({"params": rng, "dropout": rng}, seq["input"], train=False,
                           **seq["cond"]))

  def loss(params, state, batch, rng, step):
    del step
    seq = sequences(batch)
    logits = model.apply({"params": params, **state}, seq["input"], train=True,
                         rngs={"dropout": rng}, **seq["cond"])
    ce = losses.softmax_cross_entropy(logits=logits, labels=seq["target"])
    aux = {}
    total = ce
    mask = seq["target_mask"]
    if z_weight:
      z = losses.z_loss(logits=logits)
      total = ce + z_weight * z
      aux["z_loss"] = losses.weighted_mean(z, mask)
      aux["cross_entropy"] = losses.weighted_mean(ce, mask)
    return losses.weighted_mean(total, mask), (aux, {})

  def predict(variables, tokens):
    return model.apply(variables, tokens, train=False)

  def metrics(variables, batch, rng):
    del rng
    seq = sequences(batch)
    logits = model.apply(variables, seq["input"], train=False, **seq["cond"])
    ce = losses.softmax_cross_entropy(logits=logits, labels=seq["target"])
    w = batch["mask"][:, None].astype(jnp.float32) * jnp.ones_like(ce)
    if seq["target_mask"] is not None:
      w = w * seq["target_mask"]
    return {"loss": jnp.sum(ce * w), "count": jnp.sum(w)}

  def finalize(m):
    return {**m, "perplexity": math.exp(min(m["loss"], 50.0)),
            "bits_per_token": m["loss"] / math.log(2),
            "bits_per_char": m["loss"] / math.log(2) * tokens_per_char}

  fns = {"metrics": metrics, "finalize": finalize, "predict": predict}
  save = None
  if tok is not None:
    fns["sample_text"] = functools.partial(_sample_text, model, tok)

    def save(workdir):  # aigc_jax.sample reads it from the workdir
      tokenizers.save(tok, os.path.join(workdir, tokenizers.WORKDIR_FILE))

  return Task(init=init, loss=loss, eval_fns=fns, input_keys=tuple(input_keys),
              save_artifacts=save)


def _sample_text(model, tok, variables, rng, *, max_new_tokens, temperature, top_k) -> str:
  """A sample continuing a newline (or end of text), decoded."""
  prompt = tok.encode("\n") if tok.kind == "char" and "\n" in tok.chars else tok.encode("")
  if not len(prompt):
    prompt = np.asarray([tok.eot or 0], np.int32)
  out = text.generate(model, variables["params"], jnp.asarray(prompt[None], jnp.int32), rng,
                        max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k)
  return tok.decode(np.asarray(jax.device_get(out[0])))


def make_without_data(config) -> tuple[Task, dict]:
  """The task and its abstract global batch from the config alone, for ahead-of-time compiles
  (aigc_jax.tools.compile): model.vocab_size must be set, as there is no tokenizer to ask."""
  if config.model.vocab_size <= 0:
    raise ConfigError("Compiling without data needs the vocabulary size: set model.vocab_size "
                      "(e.g. --config.model.vocab_size=50304).")
  shape = (config.data.batch_size, config.data.seq_len)
  spec = {k: jax.ShapeDtypeStruct(shape, jnp.int32) for k in ("input", "target")}
  return make_task(config, config.model.vocab_size), spec


def make(config) -> Task:
  if not config.data.tokenizer:
    raise ConfigError("task 'lm' needs token sequences: set data.tokenizer (e.g. 'char').")
  tok = tokens.get_tokenizer(config.data)
  ev = tokens.load_split(config.data, config.data.eval_split)
  return make_task(config, vocab_size(config, tok), ev.num_tokens / max(ev.characters, 1), tok)
