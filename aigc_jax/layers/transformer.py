"""The transformer block shared by the GPT, the MAE and the ViT, and its initialisers and norms.

Pre-norm attention and MLP with residuals; weights carry logical axis names and activations
logical sharding constraints (rules in aigc_jax/sharding.py). Causal or bidirectional, learned or
rotary positions, with the modern-recipe switches (RMSNorm, ReLU^2, QK-norm, zero-initialised
projections, value residual, x0 skip) that models/gpt.py documents.
"""

import math

import flax.linen as nn
import jax.numpy as jnp

from aigc_jax import sharding
from aigc_jax.layers import attention


def normal(std, names):
  return nn.with_logical_partitioning(nn.initializers.normal(std), names)


def zeros(names):
  return nn.with_logical_partitioning(nn.initializers.zeros_init(), names)


# Logical names of activation dimensions: [batch, length, width] and the like.
BTD = ("activation_batch", "activation_length", "activation_embed")


def constrain(x, *names):
  return sharding.constrain(x, ("activation_batch", "activation_length") + names)


def layer_norm(dtype, use_bias, name=None):
  return nn.LayerNorm(epsilon=1e-5, dtype=dtype, name=name, use_bias=use_bias,
                      scale_init=nn.with_logical_partitioning(nn.initializers.ones, ("embed",)),
                      bias_init=zeros(("embed",)))


NORMS = ("layer", "rms")
MLPS = ("gelu", "relu2")


def norm(kind, dtype, use_bias, name=None):
  """GPT-2's LayerNorm, or a parameter-free RMSNorm (no scale, no bias: modded-nanogpt's)."""
  if kind == "rms":
    return nn.RMSNorm(epsilon=1e-6, dtype=dtype, use_scale=False, name=name)
  return layer_norm(dtype, use_bias, name)


def scalars(module, name, values):
  """Learned mixing weights (replicated), starting at `values`."""
  init = nn.with_logical_partitioning(lambda *_: jnp.asarray(values, jnp.float32), (None,))
  return module.param(name, init)


class Block(nn.Module):
  num_heads: int
  num_layers: int
  dropout: float
  dtype: jnp.dtype
  attention_impl: str
  use_bias: bool
  rotary: bool
  causal: bool = True  # False: bidirectional (a ViT or masked-LM encoder block)
  # Recipe options (see Model): norm kind, MLP activation, QK-norm, zero-initialised output
  # projections, value residual (mix in the first block's values), x0 skip (mix in the input).
  norm: str = "layer"
  mlp: str = "gelu"
  qk_norm: bool = False
  zero_init: bool = False
  value_residual: bool = False
  x0_skip: bool = False
  # adaLN-Zero (DiT, Peebles & Xie 2023): the norms lose their own scale and bias; a conditioning
  # vector cond_BC sets per-example shift, scale and a gate on each residual branch, through a
  # zero-initialised projection, so every block starts as the identity.
  adaln: bool = False

  @nn.compact
  def __call__(self, x_BTD, train: bool, decode: bool = False, index=None, cache_len: int = 0,
               lengths_B=None, x0_BTD=None, v1=None, cond_BC=None):
    """The block's output; with value_residual, (output, this block's own values) so the
    model can hand the first block's values to the others as `v1`."""
    x_BTD = sharding.constrain(x_BTD, BTD)
    if self.x0_skip and x0_BTD is not None:
      lam = scalars(self, "x0_lambdas", [1.0, 0.0]).astype(x_BTD.dtype)
      x_BTD = lam[0] * x_BTD + lam[1] * x0_BTD
    D = x_BTD.shape[-1]
    H = D // self.num_heads
    proj_std = 0.02 / math.sqrt(2 * self.num_layers)
    proj_init = zeros if self.zero_init else (lambda names: normal(proj_std, names))
    drop = nn.Dropout(self.dropout, deterministic=not train)
    if self.adaln:
      if cond_BC is None:
        raise ValueError("An adaln block needs its conditioning vector cond_BC.")
      mod = nn.Dense(6 * D, dtype=self.dtype, name="adaln",
                     kernel_init=zeros(("embed", "mlp")), bias_init=zeros(("mlp",)))(
                         nn.silu(cond_BC))
      shift1, scale1, gate1, shift2, scale2, gate2 = jnp.split(mod[:, None, :], 6, axis=-1)
    else:
      shift1 = scale1 = shift2 = scale2 = None

    def pre_norm(x, shift, scale):
      if not self.adaln:
        return norm(self.norm, self.dtype, self.use_bias)(x)
      h = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, use_scale=False, use_bias=False)(x)
      return h * (1.0 + scale) + shift

    h = pre_norm(x_BTD, shift1, scale1)
    qkv = nn.DenseGeneral((3, self.num_heads, H), dtype=self.dtype, name="qkv",
                          use_bias=self.use_bias,
                          kernel_init=normal(0.02, ("embed", None, "heads", "kv")),
                          bias_init=zeros((None, "heads", "kv")))(h)
    qkv = constrain(qkv, None, "activation_heads", "activation_kv")
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    own_v = v
    if self.value_residual and v1 is not None:
      lam = scalars(self, "v_lambda", [0.5]).astype(v.dtype)
      v = (1 - lam[0]) * v + lam[0] * v1
    if self.qk_norm:
      q, k = norm("rms", self.dtype, False)(q), norm("rms", self.dtype, False)(k)
    if self.rotary:
      pos = index + jnp.arange(x_BTD.shape[1])
      q, k = attention.rotary(q, pos), attention.rotary(k, pos)
    if decode:  # key/value cache in the "cache" collection, created by init with decode=True
      B = x_BTD.shape[0]
      ck = self.variable("cache", "k", jnp.zeros, (B, cache_len) + k.shape[2:], k.dtype)
      cv = self.variable("cache", "v", jnp.zeros, (B, cache_len) + v.shape[2:], v.dtype)
    if decode and not self.is_initializing():
      a_BTNH, ck.value, cv.value = attention.cached_attention(q, k, v, ck.value, cv.value, index)
    else:
      a_BTNH = attention.causal_attention(q, k, v, implementation=self.attention_impl,
                                          causal=self.causal, lengths=lengths_B)
    a_BTNH = constrain(a_BTNH, "activation_heads", "activation_kv")
    a = nn.DenseGeneral(D, axis=(-2, -1), dtype=self.dtype, name="out", use_bias=self.use_bias,
                        kernel_init=proj_init(("heads", "kv", "embed")),
                        bias_init=zeros(("embed",)))(a_BTNH)
    a = gate1 * a if self.adaln else a
    x_BTD = sharding.constrain(x_BTD + drop(a), BTD)
    h = pre_norm(x_BTD, shift2, scale2)
    # The MLP runs on [B*T, D]: with [B, T, D] XLA's CPU backend transposes the activation
    # gradient into a copy before each weight gradient, 15% of a small GPT's step
    # (docs/results.md, "Profiling the CPU step").
    B, T = x_BTD.shape[:2]
    h = h.reshape(B * T, D)
    h = nn.Dense(4 * D, dtype=self.dtype, name="fc", use_bias=self.use_bias,
                 kernel_init=normal(0.02, ("embed", "mlp")), bias_init=zeros(("mlp",)))(h)
    h = sharding.constrain(h, ("activation_batch", "activation_mlp"))
    h = jnp.square(nn.relu(h)) if self.mlp == "relu2" else nn.gelu(h, approximate=True)
    h = nn.Dense(D, dtype=self.dtype, name="proj", use_bias=self.use_bias,
                 kernel_init=proj_init(("mlp", "embed")), bias_init=zeros(("embed",)))(h)
    h = h.reshape(B, T, D)
    h = gate2 * h if self.adaln else h
    out = sharding.constrain(x_BTD + drop(h), BTD)
    return (out, own_v) if self.value_residual else out
