"""Causal self-attention on BTNH tensors: cuDNN flash attention on GPU, XLA elsewhere.

`implementation=None` picks cuDNN when the default backend is a GPU and the inputs are 16-bit
(cuDNN's fused kernel needs fp16/bf16), otherwise XLA; a config may force either.
"""

import jax
import jax.numpy as jnp

IMPLEMENTATIONS = (None, "", "xla", "cudnn")  # None or "": automatic


def choose(dtype, implementation: str | None = None) -> str:
  if implementation not in IMPLEMENTATIONS:
    raise ValueError(f"attention implementation {implementation!r}; valid: {IMPLEMENTATIONS}")
  if implementation:
    return implementation
  gpu = jax.default_backend() == "gpu"
  return "cudnn" if gpu and jnp.dtype(dtype) in (jnp.bfloat16, jnp.float16) else "xla"


def rotary(x_BTNH, positions_T, base: float = 10000.0):
  """Rotary position embedding (RoFormer): rotates pairs of channels by position-dependent
  angles, so q.k depends on relative position."""
  half = x_BTNH.shape[-1] // 2
  freq = base ** (-jnp.arange(half, dtype=jnp.float32) / half)
  angle = positions_T.astype(jnp.float32)[:, None] * freq[None]
  sin, cos = jnp.sin(angle)[None, :, None, :], jnp.cos(angle)[None, :, None, :]
  x1, x2 = x_BTNH[..., :half].astype(jnp.float32), x_BTNH[..., half:].astype(jnp.float32)
  return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).astype(x_BTNH.dtype)


def causal_attention(q_BTNH, k_BTNH, v_BTNH, *, implementation: str | None = None,
                     causal: bool = True, lengths=None):
  """Self-attention, causal by default; causal=False lets every position see every other
  (encoders: ViT, masked language models). `lengths` [B]: only each sequence's first `lengths`
  keys are attended (trailing padding)."""
  impl = choose(q_BTNH.dtype, implementation)
  return jax.nn.dot_product_attention(q_BTNH, k_BTNH, v_BTNH, is_causal=causal,
                                      key_value_seq_lengths=lengths, implementation=impl)


def cached_attention(q_BTNH, k_BTNH, v_BTNH, cache_k_BSNH, cache_v_BSNH, index):
  """Decoding step(s): writes k/v at `index` into the caches and attends the T new queries to
  every cached position up to their own. Returns (out, new cache k, new cache v)."""
  T, S = q_BTNH.shape[1], cache_k_BSNH.shape[1]
  cache_k_BSNH = jax.lax.dynamic_update_slice_in_dim(cache_k_BSNH, k_BTNH, index, axis=1)
  cache_v_BSNH = jax.lax.dynamic_update_slice_in_dim(cache_v_BSNH, v_BTNH, index, axis=1)
  mask_TS = jnp.arange(S)[None, :] <= (index + jnp.arange(T))[:, None]
  out = jax.nn.dot_product_attention(q_BTNH, cache_k_BSNH, cache_v_BSNH,
                                     mask=mask_TS[None, None], implementation="xla")
  return out, cache_k_BSNH, cache_v_BSNH
