"""Next-token prediction: cross-entropy of batch["input"] -> batch["target"] (token sequences).

Optional z-loss (`loss.z_loss` x log(Z)^2, PaLM) keeps the softmax normaliser near 1 in low
precision. Evaluation sums over real tokens only (eval padding `mask` per sequence, `target_mask`
per token), so the validation loss covers the whole split exactly once; it reports loss (nats per
token), perplexity, bits per token and bits per character of the original text.
"""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from aigc_jax import losses, models, sample
from aigc_jax.data import lm
from aigc_jax.errors import ConfigError
from aigc_jax.tasks import Task


def vocab_size(config, tok) -> int:
  """model.vocab_size, or the tokenizer's when it is 0; too small is an error."""
  needed = tok.vocab_size
  have = config.model.get("vocab_size", 0)
  if have and have < needed:
    raise ConfigError(f"model.vocab_size={have} is smaller than the tokenizer's vocabulary "
                      f"({needed}); set it to >= {needed} or 0 to use the tokenizer's.")
  return have or needed


def make_task(config, vocab: int, tokens_per_char: float = 1.0, on_eval=None) -> Task:
  """The task for a model with vocabulary `vocab`, independent of any data set (benchmarks)."""
  model = models.get_model(config.model, vocab_size=vocab)

  def init(rng, batch_spec):
    x = jnp.zeros(batch_spec["input"].shape, jnp.int32)
    return dict(model.init({"params": rng, "dropout": rng}, x, train=False))

  def loss(params, state, batch, rng):
    logits = model.apply({"params": params, **state}, batch["input"], train=True,
                         rngs={"dropout": rng})
    ce = losses.softmax_cross_entropy(logits=logits, labels=batch["target"])
    metrics = {}
    total = ce
    if config.loss.z_loss:
      z = losses.z_loss(logits=logits)
      total = ce + config.loss.z_loss * z
      metrics["z_loss"] = losses.weighted_mean(z, batch.get("target_mask"))
    mask = batch.get("target_mask")
    if metrics:
      metrics["cross_entropy"] = losses.weighted_mean(ce, mask)
    return losses.weighted_mean(total, mask), (metrics, {})

  def predict(variables, tokens):
    return model.apply(variables, tokens, train=False)

  def eval_step(variables, batch):
    logits = predict(variables, batch["input"])
    ce = losses.softmax_cross_entropy(logits=logits, labels=batch["target"])
    w = batch["mask"][:, None].astype(jnp.float32) * jnp.ones_like(ce)
    if "target_mask" in batch:
      w = w * batch["target_mask"]
    return {"loss": jnp.sum(ce * w), "count": jnp.sum(w)}

  def finalize(m):
    return {**m, "perplexity": math.exp(min(m["loss"], 50.0)),
            "bits_per_token": m["loss"] / math.log(2),
            "bits_per_char": m["loss"] / math.log(2) * tokens_per_char}

  return Task(init=init, loss=loss, eval_step=eval_step, eval_fns={"predict": predict},
              input_keys=("input", "target"), finalize=finalize, on_eval=on_eval)


def make(config) -> Task:
  if not config.data.tokenizer:
    raise ConfigError("task 'lm' needs token sequences: set data.tokenizer (e.g. 'char').")
  tok = lm.get_tokenizer(config.data)
  vocab = vocab_size(config, tok)
  model = models.get_model(config.model, vocab_size=vocab)
  ev = lm.load_split(config.data, config.data.eval_split)

  def on_eval(variables, step, workdir):
    """A sample from the current model in DIR/samples/, to read how training is going."""
    params = variables["params"]
    prompt = tok.encode("\n") if tok.kind == "char" and "\n" in tok.chars else tok.encode("")
    if not len(prompt):
      prompt = np.asarray([tok.eot or 0], np.int32)
    out = sample.generate(model, params, jnp.asarray(prompt[None], jnp.int32),
                          jax.random.PRNGKey(step), max_new_tokens=config.train.sample_tokens,
                          temperature=0.8, top_k=200)
    if jax.process_index() != 0:
      return
    os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
    with open(os.path.join(workdir, "samples", f"step_{step:06d}.txt"), "w") as f:
      f.write(tok.decode(np.asarray(out[0])))

  return make_task(config, vocab, ev.num_tokens / max(ev.characters, 1),
                   on_eval if config.train.sample_tokens > 0 else None)
