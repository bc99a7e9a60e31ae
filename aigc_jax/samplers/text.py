"""Text from a language model: a jitted loop over new tokens with a key/value cache.

While the context fits the model's block the cache makes each token one small step; beyond it,
as nanoGPT does, the last block_size tokens are re-read every step (learned absolute positions
cannot slide a cache).
"""

import functools

import jax
import jax.numpy as jnp


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
