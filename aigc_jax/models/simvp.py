"""A SimVP-style predictor (Gao et al. 2022; gated spatio-temporal attention of Tan et al. 2023).

All given frames are predicted from at once, without recurrence: a convolutional encoder shared
by the frames (`patch` x `patch` pixels folded into channels, then stride-2 stages down to
1/(patch 2^downsample)), a translator that stacks the frames'
features as channels and mixes space and time with gated large-kernel attention blocks
(depthwise 5x5, depthwise dilated 7x7, a sigmoid gate) and MLPs, then a decoder that upsamples by
depth-to-space (sub-pixel convolution), merges the last given frame's first encoder features (the
skip path) and unfolds the patches, predicting all future frames in one pass. Folding pixels
into patches first keeps the encoder and decoder off the full resolution, where a 3x3
convolution costs 16 times what it does at 1/4 (the CPU budget buys translator width instead).

Input [B, T_given, H, W, C] with H and W divisible by patch * 2^downsample; output
[B, num_future, H, W, C].
"""

import einops
import flax.linen as nn
import jax.numpy as jnp

from aigc_jax.errors import ConfigError
from aigc_jax.layers.dense import Conv

MIXERS = ("large_kernel", "conv3x3")


def _depthwise(features: int, kernel: int, dilation: int, dtype, name: str):
  return nn.Conv(features, (kernel, kernel), padding="SAME", kernel_dilation=dilation,
                 feature_group_count=features, dtype=dtype, name=name,
                 kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(),
                                                          (None, None, None, "conv_out")),
                 bias_init=nn.with_logical_partitioning(nn.initializers.zeros_init(),
                                                        ("conv_out",)))


class _ConvNorm(nn.Module):
  features: int
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x):
    x = Conv(self.features, (3, 3), padding="SAME", dtype=self.dtype, name="conv")(x)
    return nn.silu(nn.GroupNorm(min(8, self.features), dtype=self.dtype, name="norm")(x))


class _GatedBlock(nn.Module):
  """x + proj(gate * mixer(norm x)), then x + MLP(norm x)."""
  features: int
  mlp_ratio: float = 4.0
  mixer: str = "large_kernel"
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x):
    f = self.features
    y = nn.GroupNorm(min(8, f), dtype=self.dtype, name="norm1")(x)
    if self.mixer == "large_kernel":
      a = _depthwise(f, 5, 1, self.dtype, "dw5")(y)
      a = _depthwise(f, 7, 3, self.dtype, "dw7_dilated")(a)
    else:
      a = Conv(f, (3, 3), padding="SAME", dtype=self.dtype, name="conv3x3")(y)
    value, gate = jnp.split(Conv(2 * f, (1, 1), dtype=self.dtype, name="attn")(a), 2, axis=-1)
    x = x + Conv(f, (1, 1), dtype=self.dtype, name="proj")(nn.sigmoid(gate) * value)
    y = nn.GroupNorm(min(8, f), dtype=self.dtype, name="norm2")(x)
    y = nn.gelu(Conv(int(f * self.mlp_ratio), (1, 1), dtype=self.dtype, name="mlp1")(y))
    return x + Conv(f, (1, 1), dtype=self.dtype, name="mlp2")(y)


class Model(nn.Module):
  channels: int = 32  # encoder and decoder features per frame
  hidden: int = 256  # translator features (all frames together)
  blocks: int = 4  # translator blocks
  patch: int = 2  # pixels folded into channels first
  downsample: int = 1  # then stride-2 stages: 64x64 frames are translated at 16x16
  mlp_ratio: float = 4.0
  mixer: str = "large_kernel"  # large_kernel (gSTA's depthwise 5x5 + dilated 7x7) | conv3x3
  dtype: str = ""

  @nn.compact
  def __call__(self, given, num_future: int):
    if self.mixer not in MIXERS:
      raise ConfigError(f"simvp: model.mixer={self.mixer!r}; valid: {', '.join(MIXERS)}.")
    b, t, h, w, c = given.shape
    p = self.patch
    s = p * 2**self.downsample
    if h % s or w % s:
      raise ConfigError(f"simvp: frames {h}x{w} are not divisible by model.patch * "
                        f"2^model.downsample = {s}.")
    dtype = jnp.dtype(self.dtype) if self.dtype else None
    cs = self.channels
    x = einops.rearrange(given, "b t (h p) (w q) c -> (b t) h w (p q c)", p=p, q=p)
    skip = x = _ConvNorm(cs, dtype=dtype, name="enc0")(x)
    for i in range(self.downsample):
      # A fold and a 3x3 convolution, not a stride-2 one: XLA:CPU computes a strided
      # convolution's input gradient on a slow generic path (layers/conv.py).
      x = einops.rearrange(x, "n (h p) (w q) c -> n h w (p q c)", p=2, q=2)
      x = _ConvNorm(cs, dtype=dtype, name=f"enc{i + 1}")(x)
    z = einops.rearrange(x, "(b t) h w c -> b h w (t c)", b=b)
    z = Conv(self.hidden, (1, 1), dtype=dtype, name="translator_in")(z)
    for i in range(self.blocks):
      z = _GatedBlock(self.hidden, self.mlp_ratio, self.mixer, dtype=dtype, name=f"block{i}")(z)
    z = Conv(num_future * cs, (1, 1), dtype=dtype, name="translator_out")(z)
    y = einops.rearrange(z, "b h w (t c) -> (b t) h w c", t=num_future)
    for i in range(self.downsample):
      y = Conv(4 * cs, (3, 3), padding="SAME", dtype=dtype, name=f"dec{i}_up")(y)  # sub-pixel
      y = einops.rearrange(y, "n h w (p q c) -> n (h p) (w q) c", p=2, q=2)
      y = nn.silu(nn.GroupNorm(min(8, cs), dtype=dtype, name=f"dec{i}_norm")(y))
    last = einops.rearrange(skip, "(b t) h w c -> b t h w c", b=b)[:, -1:]
    last = jnp.broadcast_to(last, (b, num_future) + last.shape[2:]).reshape(y.shape)
    y = nn.silu(Conv(cs, (1, 1), dtype=dtype, name="merge")(jnp.concatenate([y, last], -1)))
    out = Conv(p * p * c, (3, 3), padding="SAME", dtype=dtype, name="out")(y)
    out = einops.rearrange(out, "(b t) h w (p q c) -> b t (h p) (w q) c", b=b, p=p, q=p)
    return out.astype(given.dtype)
