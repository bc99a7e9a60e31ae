"""The denoising U-Net of DDPM (Ho et al. 2020) in the improved form (Nichol & Dhariwal 2021).

Residual blocks (group norm, SiLU, 3x3 convolutions, the time and class embedding added between
the two convolutions, the second convolution zero-initialised), self-attention at the
resolutions in `attention_at`, stride-2 convolutions down and nearest-neighbour upsampling with a
convolution up, skip connections concatenated. The time t in [0, 1] enters as sinusoidal
features of 1000 t through a two-layer MLP; a class-conditional model (num_classes > 0) adds a
label embedding with one extra row, index num_classes, the "no label" of classifier-free
guidance. The output (same shape as the input) is zero-initialised, so training starts from a
model that predicts 0.

A caption-conditioned model (`text`, models/clip.py) adds its caption's embedding instead, and
at the resolutions in `cross_attention_at` its positions also attend to the caption's tokens.

An image-conditioned model (`cond_channels` > 0) reads a conditioning image [B, H, W,
cond_channels] concatenated to its input as channels: the given frames of a video whose future
it denoises (tasks/video.py objective "diffusion"), as SR3 and video diffusion condition on
pixels.

Input [B, H, W, C] with H and W divisible by patch x 2^(len(multipliers) - 1); t [B]; labels [B],
caption ids [B, L] or None; cond_image [B, H, W, cond_channels] or None.
"""

import math

from collections.abc import Mapping

import einops
import flax.linen as nn
import jax.numpy as jnp
from flax.core import FrozenDict

from aigc_jax.errors import ConfigError
from aigc_jax.layers import attention
from aigc_jax.layers.dense import Conv, Dense
from aigc_jax.models import clip


def timestep_embedding(t_B, dim: int, scale: float = 1000.0):
  """Sinusoidal features of scale * t (DDPM's timestep embedding, for continuous t)."""
  half = dim // 2
  freqs = jnp.exp(-math.log(10_000.0) * jnp.arange(half, dtype=jnp.float32) / half)
  args = scale * t_B.astype(jnp.float32)[:, None] * freqs[None]
  return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)


def _zero_conv(features: int, name: str, dtype):
  return nn.Conv(features, (3, 3), padding="SAME", dtype=dtype, name=name,
                 kernel_init=nn.with_logical_partitioning(nn.initializers.zeros_init(),
                                                          (None, None, "conv_in", "conv_out")),
                 bias_init=nn.with_logical_partitioning(nn.initializers.zeros_init(),
                                                        ("conv_out",)))


class ResBlock(nn.Module):
  features: int
  groups: int
  dropout: float
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x, emb, train: bool):
    h = nn.silu(nn.GroupNorm(self.groups, dtype=self.dtype, name="norm1")(x))
    h = Conv(self.features, (3, 3), padding="SAME", dtype=self.dtype, name="conv1")(h)
    h = h + Dense(self.features, names=("embed", "conv_out"), dtype=self.dtype,
                  name="emb")(nn.silu(emb))[:, None, None, :]
    h = nn.silu(nn.GroupNorm(self.groups, dtype=self.dtype, name="norm2")(h))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = _zero_conv(self.features, "conv2", self.dtype)(h)
    if x.shape[-1] != self.features:
      x = Conv(self.features, (1, 1), dtype=self.dtype, name="skip")(x)
    return x + h


class AttentionBlock(nn.Module):
  """Self-attention over the H x W positions (bidirectional), residual, output zero-initialised."""
  heads: int
  groups: int
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x):
    B, H, W, C = x.shape
    h = nn.GroupNorm(self.groups, dtype=self.dtype, name="norm")(x)
    h = einops.rearrange(h, "b h w c -> b (h w) c")
    qkv = nn.DenseGeneral((3, self.heads, C // self.heads), dtype=self.dtype, name="qkv")(h)
    a = attention.causal_attention(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2], causal=False)
    out = nn.DenseGeneral(C, axis=(-2, -1), dtype=self.dtype, name="out",
                          kernel_init=nn.initializers.zeros_init())(a)
    return x + einops.rearrange(out, "b (h w) c -> b h w c", h=H, w=W)


class CrossAttentionBlock(nn.Module):
  """The H x W positions attend to a caption's token states (Imagen's and latent diffusion's
  text conditioning, where a pooled vector cannot say which digit goes where); residual, output
  zero-initialised. `ctx` [B, S, D] with `lengths` [B] real entries (the rest padding)."""
  heads: int
  groups: int
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x, ctx, lengths):
    B, H, W, C = x.shape
    h = nn.GroupNorm(self.groups, dtype=self.dtype, name="norm")(x)
    h = einops.rearrange(h, "b h w c -> b (h w) c")
    q = nn.DenseGeneral((self.heads, C // self.heads), dtype=self.dtype, name="q")(h)
    ctx = nn.LayerNorm(dtype=self.dtype, name="ctx_norm")(ctx)
    kv = nn.DenseGeneral((2, self.heads, C // self.heads), dtype=self.dtype, name="kv")(ctx)
    a = attention.causal_attention(q, kv[:, :, 0].astype(q.dtype), kv[:, :, 1].astype(q.dtype),
                                   causal=False, lengths=lengths)
    out = nn.DenseGeneral(C, axis=(-2, -1), dtype=self.dtype, name="out",
                          kernel_init=nn.initializers.zeros_init())(a)
    return x + einops.rearrange(out, "b (h w) c -> b h w c", h=H, w=W)


def check(m) -> None:
  """Config-time checks, before anything is built or compiled."""
  factor = 2 ** (len(m.multipliers) - 1)
  if m.patch < 1 or m.image_size % m.patch:
    raise ConfigError(f"model.patch={m.patch} must be >= 1 and divide model.image_size="
                      f"{m.image_size} (the stem folds patch x patch pixels into channels).")
  if (m.image_size // m.patch) % factor:
    raise ConfigError(
        f"model.image_size={m.image_size} / model.patch={m.patch} is not divisible by "
        f"2^{len(m.multipliers) - 1} = {factor}, which the U-Net's {len(m.multipliers) - 1} "
        f"downsamplings need (model.multipliers={tuple(m.multipliers)}): resize the data or "
        "use fewer levels.")
  widths = {m.width * k for k in m.multipliers}
  if any(w % m.groups for w in widths):
    raise ConfigError(f"model.groups={m.groups} must divide every level's width "
                      f"{sorted(widths)} (model.width x model.multipliers).")
  if any(w % m.heads for w in widths):
    raise ConfigError(f"model.heads={m.heads} must divide every level's width {sorted(widths)}.")
  levels = [m.image_size // m.patch // 2**i for i in range(len(m.multipliers))]
  if set(m.cross_attention_at) - set(levels):
    raise ConfigError(f"model.cross_attention_at={tuple(m.cross_attention_at)} names "
                      f"resolutions the U-Net does not have; its levels are {levels} "
                      "(image_size / patch / 2^i).")
  clip.check_condition(m)


def concat_cond_image(m, x_BHWC, cond_image):
  """The input with the conditioning image's channels appended (m.cond_channels > 0)."""
  if not m.cond_channels:
    if cond_image is not None:
      raise ConfigError("A conditioning image was passed to a denoiser built without one: set "
                        "model.cond_channels to its channels.")
    return x_BHWC
  want = x_BHWC.shape[:3] + (m.cond_channels,)
  if cond_image is None or tuple(cond_image.shape) != want:
    got = None if cond_image is None else tuple(cond_image.shape)
    raise ConfigError(f"This denoiser is conditioned on an image (model.cond_channels="
                      f"{m.cond_channels}): pass cond_image of shape {want}; got {got}.")
  return jnp.concatenate([x_BHWC, cond_image.astype(x_BHWC.dtype)], axis=-1)


class Model(nn.Module):
  image_size: int = 28
  channels: int = 1
  width: int = 64
  multipliers: tuple = (1, 2, 2)
  num_res_blocks: int = 2
  attention_at: tuple = (7,)  # resolutions with self-attention (7: MNIST's lowest level)
  heads: int = 4
  groups: int = 8
  dropout: float = 0.1
  num_classes: int = 0  # > 0: class-conditional, with a "no label" row for guidance
  # Caption conditioning (models/clip.py TextCondition): the clip text tower's gpt fields, its
  # vocabulary (0: the tokenizer's), embedding size and pooling; empty: no captions.
  text: Mapping = FrozenDict()
  vocab_size: int = 0
  text_dim: int = 64
  text_pooling: str = "mean"
  # Resolutions whose blocks also cross-attend to the caption's tokens (text only; the pooled
  # caption embedding joins the time embedding either way).
  cross_attention_at: tuple = ()
  # > 1: patch x patch pixels folded into channels before the first convolution and unfolded
  # after the last, so the U-Net runs at 1 / patch the resolution (patch^2 fewer FLOPs a level).
  patch: int = 1
  cond_channels: int = 0  # > 0: a conditioning image of this many channels joins the input
  dtype: jnp.dtype | None = None

  def __post_init__(self):
    check(self)
    super().__post_init__()

  @nn.compact
  def __call__(self, x_BHWC, t_B, cond=None, *, cond_image=None, train: bool = False):
    d = self.dtype
    x_BHWC = concat_cond_image(self, x_BHWC, cond_image)
    emb = timestep_embedding(t_B, self.width)
    emb = Dense(4 * self.width, names=(None, "mlp"), dtype=d, name="time1")(emb)
    emb = Dense(4 * self.width, names=("mlp", "embed"), dtype=d, name="time2")(nn.silu(emb))
    c = clip.embed_condition(self, cond, 4 * self.width, context=bool(self.cross_attention_at))
    ctx = None
    if isinstance(c, tuple):
      c, *ctx = c
    if c is not None:
      emb = emb + c

    def res(h, features, name):
      return ResBlock(features, self.groups, self.dropout, d, name=name)(h, emb, train)

    def attend(h, name, always=False):
      if always or h.shape[1] in self.attention_at:
        h = AttentionBlock(self.heads, self.groups, d, name=name)(h)
      if h.shape[1] in self.cross_attention_at:
        h = CrossAttentionBlock(self.heads, self.groups, d, name=name + "_x")(h, *ctx)
      return h

    p = self.patch
    x = einops.rearrange(x_BHWC, "b (h p) (w q) c -> b h w (p q c)", p=p, q=p)
    h = Conv(self.width, (3, 3), padding="SAME", dtype=d, name="conv_in")(x)
    skips = [h]
    last = len(self.multipliers) - 1
    for i, mult in enumerate(self.multipliers):
      for j in range(self.num_res_blocks):
        h = attend(res(h, self.width * mult, f"down{i}_res{j}"), f"down{i}_attn{j}")
        skips.append(h)
      if i < last:
        h = Conv(h.shape[-1], (3, 3), strides=2, padding="SAME", dtype=d, name=f"down{i}")(h)
        skips.append(h)
    h = res(h, h.shape[-1], "mid_res0")
    h = attend(h, "mid_attn", always=True)
    h = res(h, h.shape[-1], "mid_res1")
    for i, mult in reversed(list(enumerate(self.multipliers))):
      for j in range(self.num_res_blocks + 1):
        h = jnp.concatenate([h, skips.pop()], axis=-1)
        h = attend(res(h, self.width * mult, f"up{i}_res{j}"), f"up{i}_attn{j}")
      if i > 0:
        h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)
        h = Conv(h.shape[-1], (3, 3), padding="SAME", dtype=d, name=f"up{i}")(h)
    h = nn.silu(nn.GroupNorm(self.groups, dtype=d, name="norm_out")(h))
    out = _zero_conv(p * p * self.channels, "conv_out", d)(h)
    out = einops.rearrange(out, "b h w (p q c) -> b (h p) (w q) c", p=p, q=p)
    return out.astype(jnp.float32)
