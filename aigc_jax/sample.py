"""Sampling from a trained language model, jitted, with a key/value cache.

  python -m aigc_jax.sample --workdir=DIR --prompt="ROMEO:" --max_new_tokens=500 \
      --temperature=0.8 --top_k=200 [--top_p=0.9] [--seed=0] [--num_samples=1]

Reads DIR/config.json, the tokenizer saved in DIR and the best checkpoint (DIR/best/, else the
latest). While the context fits the model's block the cache makes each token one small step;
beyond it, as nanoGPT does, the last block_size tokens are re-read every step (learned absolute
positions cannot slide a cache).
"""

import functools
import os
import sys

from etils import epath
import jax
import jax.numpy as jnp
import numpy as np

from aigc_jax.data import tokenizers
from aigc_jax.errors import ConfigError

TOKENIZER_FILE = "tokenizer.json"


def filter_logits(logits_BV, temperature: float, top_k: int, top_p: float):
  """Temperature, then top-k, then nucleus (top-p) filtering; filtered entries become -inf."""
  logits_BV = logits_BV.astype(jnp.float32) / max(temperature, 1e-6)
  if top_k:
    kth = jax.lax.top_k(logits_BV, min(top_k, logits_BV.shape[-1]))[0][:, -1:]
    logits_BV = jnp.where(logits_BV < kth, -jnp.inf, logits_BV)
  if 0.0 < top_p < 1.0:
    sorted_BV = jnp.sort(logits_BV, axis=-1)[:, ::-1]
    probs = jax.nn.softmax(sorted_BV, axis=-1)
    # Keep the smallest prefix whose mass reaches top_p (the first token always stays).
    keep = jnp.cumsum(probs, axis=-1) - probs < top_p
    cutoff = jnp.min(jnp.where(keep, sorted_BV, jnp.inf), axis=-1, keepdims=True)
    logits_BV = jnp.where(logits_BV < cutoff, -jnp.inf, logits_BV)
  return logits_BV


def _pick(rng, logits_BV, temperature, top_k, top_p):
  if temperature == 0.0:
    return jnp.argmax(logits_BV, axis=-1).astype(jnp.int32)
  return jax.random.categorical(rng, filter_logits(logits_BV, temperature, top_k, top_p)
                                ).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("model", "max_new_tokens", "temperature", "top_k",
                                             "top_p", "use_cache"))
def generate(model, params, prompt_BT, rng, *, max_new_tokens: int, temperature: float = 1.0,
             top_k: int = 0, top_p: float = 1.0, use_cache: bool = True):
  """prompt_BT followed by max_new_tokens sampled tokens, [B, T + max_new_tokens].

  The token at step i is drawn with `fold_in(rng, i)`, so the cached and uncached paths (and
  any batch size) draw the same tokens from the same logits.
  """
  B, T = prompt_BT.shape
  L = model.block_size
  total = T + max_new_tokens
  out = jnp.zeros((B, total), jnp.int32).at[:, :T].set(prompt_BT)
  pick = functools.partial(_pick, temperature=temperature, top_k=top_k, top_p=top_p)
  cached_steps = max(0, min(max_new_tokens, L - T + 1)) if use_cache else 0

  if cached_steps:
    cache = model.init(jax.random.PRNGKey(0), jnp.zeros((B, L), jnp.int32), decode=True)["cache"]
    logits, mut = model.apply({"params": params, "cache": cache}, prompt_BT, decode=True,
                              mutable=["cache"])
    tok = pick(jax.random.fold_in(rng, 0), logits[:, -1])
    out = out.at[:, T].set(tok)

    def cached(carry, i):
      out, cache, tok = carry
      logits, mut = model.apply({"params": params, "cache": cache}, tok[:, None], decode=True,
                                mutable=["cache"])
      tok = pick(jax.random.fold_in(rng, i), logits[:, -1])
      return (out.at[:, T + i].set(tok), mut["cache"], tok), None

    (out, _, _), _ = jax.lax.scan(cached, (out, mut["cache"], tok),
                                  jnp.arange(1, cached_steps))

  def window(out, i):
    """Token T + i from the (at most) L tokens before it, re-read in one pass."""
    n = T + i  # tokens known so far
    start = jnp.maximum(n - L, 0)
    ctx = jax.lax.dynamic_slice_in_dim(out, start, min(L, total), axis=1)
    logits = model.apply({"params": params}, ctx)
    last = jax.lax.dynamic_index_in_dim(logits, jnp.minimum(n, L) - 1, axis=1, keepdims=False)
    tok = pick(jax.random.fold_in(rng, i), last)
    return out.at[:, n].set(tok), None

  out, _ = jax.lax.scan(window, out, jnp.arange(cached_steps, max_new_tokens))
  return out


def load_workdir(workdir: str):
  """(config, model, params, tokenizer) of a trained language-model workdir."""
  from aigc_jax import checkpoint  # pylint: disable=import-outside-toplevel
  tok_path = os.path.join(workdir, TOKENIZER_FILE)
  if (epath.Path(workdir, "config.json").exists()
      and not epath.Path(tok_path).exists()):
    raise ConfigError(f"{workdir} has no {TOKENIZER_FILE}: only language-model runs "
                      "(data.tokenizer set) can be sampled.")
  trained = checkpoint.load_workdir(workdir)
  tok = tokenizers.load(tok_path)
  model = trained.model(vocab_size=trained.config.model.vocab_size or tok.vocab_size)
  return trained.config, model, trained.variables["params"], tok


def main(argv=None):
  from absl import app, flags  # pylint: disable=import-outside-toplevel
  flags.DEFINE_string("workdir", None, "A language-model training workdir.", required=True)
  flags.DEFINE_string("prompt", "\n", "Text to continue.")
  flags.DEFINE_integer("max_new_tokens", 500, "Tokens to sample.")
  flags.DEFINE_float("temperature", 0.8, "Softmax temperature; 0 is greedy.")
  flags.DEFINE_integer("top_k", 200, "Sample from the k most likely tokens (0: all).")
  flags.DEFINE_float("top_p", 1.0, "Nucleus sampling mass (1: off).")
  flags.DEFINE_integer("seed", 0, "Random seed.")
  flags.DEFINE_integer("num_samples", 1, "Samples drawn in one batch.")
  F = flags.FLAGS

  def run(_):
    try:
      _, model, params, tok = load_workdir(F.workdir)
      ids = tok.encode(F.prompt)
    except ConfigError as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)
    prompt = jnp.asarray(np.tile(ids[None], (F.num_samples, 1)), jnp.int32)
    out = generate(model, params, prompt, jax.random.PRNGKey(F.seed),
                   max_new_tokens=F.max_new_tokens, temperature=F.temperature, top_k=F.top_k,
                   top_p=F.top_p)
    for row in np.asarray(out):
      print(tok.decode(row))
      print("---------------")

  app.run(run, argv)


if __name__ == "__main__":
  main()
