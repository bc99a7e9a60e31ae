"""Autoencoder / VAE: an `Encoder` to a latent code and a mirrored `Decoder` back to the image.

The reference is the Flax examples' VAE on MNIST, 784-500-20 (one hidden layer of 500 units, a
20-d latent): `kind="mlp", hidden=(500,), latent_dim=20`. `kind="conv"` uses 3x3 stride-2 convs
with channels `hidden` down and transposed convs back up. `kind="spatial"` keeps the code a
feature map: the same convs, then a 3x3 conv to `latent_dim` channels squashed by tanh, so the
code [B, H / 2^n, W / 2^n, latent_dim] lies in [-1, 1] like the images a diffusion model draws
(the first stage of latent diffusion, tasks/diffusion.py). A `variational` encoder returns
(mean, log_variance) from ONE final dense layer of 2*latent_dim, so its parameters differ from
the deterministic encoder's only in that layer's width. The decoder returns logits /
pre-activations: the task applies the sigmoid, BCE-with-logits or MSE, and the VAE's sampling.
The parameters are {"encoder": ..., "decoder": ...}; `encoder` has the same structure as the
`encoder` of `encoder_classifier.Model` for the same fields, so it can be copied across.
"""

import math
from typing import Sequence

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp

from aigc_jax.errors import ConfigError
from aigc_jax.layers.conv import ConvTranspose
from aigc_jax.layers.dense import INITS, Conv, Dense

KINDS = ("mlp", "conv", "spatial")


def check(kind: str, hidden: Sequence[int], latent_dim: int, image_shape=None,
          weight_init: str = "lecun", prefix: str = "model.") -> None:
  """Config-time checks, before anything is built or compiled; `prefix` names the config keys."""
  if kind not in KINDS:
    raise ConfigError(f"{prefix}kind={kind!r}; valid: {KINDS}.")
  if latent_dim < 1:
    raise ConfigError(f"{prefix}latent_dim={latent_dim}; it must be at least 1 (e.g. 20).")
  if any(h < 1 for h in hidden):
    raise ConfigError(f"{prefix}hidden={tuple(hidden)}; every width must be at least 1.")
  if kind != "mlp" and not hidden:
    raise ConfigError(f"{prefix}kind={kind!r} needs at least one channel count in {prefix}hidden, "
                      "e.g. (32, 64).")
  if weight_init not in INITS:
    raise ConfigError(f"{prefix}weight_init={weight_init!r}; valid: {INITS}.")
  if image_shape is None:
    return
  shape = tuple(image_shape)
  if not shape or any(d < 1 for d in shape):
    raise ConfigError(f"{prefix}image_shape={shape}; give positive sizes, e.g. (28, 28, 1).")
  if kind != "mlp":
    if len(shape) != 3:
      raise ConfigError(f"{prefix}image_shape={shape}; kind={kind!r} needs (H, W, C), "
                        "e.g. (28, 28, 1).")
    s = 2 ** len(hidden)
    if shape[0] % s or shape[1] % s:
      raise ConfigError(
          f"{prefix}image_shape={shape}: kind={kind!r} halves H and W {len(hidden)} times "
          f"(len({prefix}hidden)), so both must be divisible by {s}; use fewer entries in "
          f"{prefix}hidden (28x28 allows at most 2) or pad the images.")


def _conv_t_init(init: str, fan_in: int):
  if init == "torch":  # PyTorch's ConvTranspose2d: fan_in = out_channels * kernel area
    bound = 1 / math.sqrt(fan_in)
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound,
                                                                    bound)
  return nn.initializers.lecun_normal()


class _UpConv(nn.Module):
  """Stride-2 4x4 transposed conv ("SAME": doubles H and W) plus a bias; CPU-fast ConvTranspose."""
  features: int
  init: str = "lecun"

  @nn.compact
  def __call__(self, x):
    kernel_init = _conv_t_init(self.init, self.features * 16)
    y = ConvTranspose(self.features, (4, 4), strides=(2, 2), name="conv", kernel_init=(
        nn.with_logical_partitioning(kernel_init, (None, None, "conv_in", "conv_out"))))(x)
    bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros_init(),
                                                           ("conv_out",)), (self.features,))
    return y + bias.astype(y.dtype).reshape((1,) * (y.ndim - 1) + (-1,))


class Encoder(nn.Module):
  """Images [B, H, W(, C)] (mlp: any [B, ...]) -> code [B, latent_dim] (spatial: [B, h, w,
  latent_dim]), or (mean, log_var)."""
  kind: str = "mlp"
  hidden: Sequence[int] = (500,)  # mlp: widths; conv: channels of the stride-2 3x3 convs
  latent_dim: int = 20
  variational: bool = False
  weight_init: str = "lecun"

  def __post_init__(self):
    object.__setattr__(self, "hidden", tuple(self.hidden))  # hashable, whatever the config gave
    check(self.kind, self.hidden, self.latent_dim, weight_init=self.weight_init, prefix="")
    super().__post_init__()

  @nn.compact
  def __call__(self, x):
    if self.kind == "mlp":
      h = einops.rearrange(x, "b ... -> b (...)")
      for i, width in enumerate(self.hidden):
        h = nn.relu(Dense(width, names=("embed", "mlp"), init=self.weight_init,
                          name=f"hidden_{i}")(h))
    else:
      h = x[..., None] if x.ndim == 3 else x  # (batch, height, width) -> one channel
      if h.ndim != 4:
        raise ConfigError(f"kind={self.kind!r} needs images [B, H, W] or [B, H, W, C], got {x.shape}.")
      for i, channels in enumerate(self.hidden):
        h = nn.relu(Conv(channels, (3, 3), strides=2, padding="SAME", init=self.weight_init,
                         name=f"conv_{i}")(h))
      if self.kind == "spatial":
        if self.variational:
          raise ConfigError("kind='spatial' codes are deterministic: variational=False.")
        return jnp.tanh(Conv(self.latent_dim, (3, 3), padding="SAME", init=self.weight_init,
                             name="code")(h))
      h = einops.rearrange(h, "b h w c -> b (h w c)")
    width = 2 * self.latent_dim if self.variational else self.latent_dim
    code = Dense(width, names=("mlp", None), init=self.weight_init, name="code")(h)
    if self.variational:
      mean, log_variance = jnp.split(code, 2, axis=-1)
      return mean, log_variance
    return code


class Decoder(nn.Module):
  """Code [B, latent_dim] (spatial: [B, h, w, latent_dim]) -> logits [B, *image_shape]; the
  same `hidden` mirrors the Encoder."""
  kind: str = "mlp"
  hidden: Sequence[int] = (500,)  # given in the encoder's order; used reversed
  image_shape: Sequence[int] = (28, 28, 1)
  weight_init: str = "lecun"

  def __post_init__(self):
    object.__setattr__(self, "hidden", tuple(self.hidden))
    object.__setattr__(self, "image_shape", tuple(self.image_shape))
    check(self.kind, self.hidden, 1, self.image_shape, self.weight_init, prefix="")
    super().__post_init__()

  @nn.compact
  def __call__(self, z):
    shape = self.image_shape
    if self.kind == "mlp":
      h = z
      for i, width in enumerate(reversed(self.hidden)):
        h = nn.relu(Dense(width, names=("embed", "mlp"), init=self.weight_init,
                          name=f"hidden_{i}")(h))
      h = Dense(math.prod(shape), names=("mlp", None), init=self.weight_init, name="output")(h)
      return h.reshape((z.shape[0],) + shape)
    s = 2 ** len(self.hidden)
    height, width, channels = shape[0] // s, shape[1] // s, self.hidden[-1]
    if self.kind == "spatial":
      h = nn.relu(Conv(channels, (3, 3), padding="SAME", init=self.weight_init,
                       name="project")(z))
    else:
      h = Dense(height * width * channels, names=("embed", "mlp"), init=self.weight_init,
                name="project")(z)
      h = einops.rearrange(nn.relu(h), "b (h w c) -> b h w c", h=height, w=width)
    # Channels mirror the encoder's: (32, 64) goes 7x7x64 -> 14x14x32 -> 28x28x32 -> 28x28xC.
    for i, ch in enumerate(self.hidden[-2::-1] + self.hidden[:1]):
      h = nn.relu(_UpConv(ch, self.weight_init, name=f"up_{i}")(h))
    return Conv(shape[2], (3, 3), padding="SAME", init=self.weight_init, name="output")(h)


class Model(nn.Module):
  """Autoencoder (or VAE with `variational=True`); params {"encoder": ..., "decoder": ...}."""
  kind: str = "mlp"
  hidden: Sequence[int] = (500,)
  latent_dim: int = 20
  variational: bool = False
  image_shape: Sequence[int] = (28, 28, 1)
  weight_init: str = "lecun"

  def __post_init__(self):
    object.__setattr__(self, "hidden", tuple(self.hidden))
    object.__setattr__(self, "image_shape", tuple(self.image_shape))
    check(self.kind, self.hidden, self.latent_dim, self.image_shape, self.weight_init)
    super().__post_init__()

  def setup(self):
    self.encoder = Encoder(self.kind, self.hidden, self.latent_dim, self.variational,
                           self.weight_init)
    self.decoder = Decoder(self.kind, self.hidden, self.image_shape, self.weight_init)

  def __call__(self, x):
    """Reconstruction logits; a VAE decodes its mean (the task does the sampling)."""
    code = self.encode(x)
    return self.decode(code[0] if self.variational else code)

  def encode(self, x):
    """Images [B, *image_shape] (or [B, H, W] when C == 1) -> code, or (mean, log_variance)."""
    got, shape = tuple(x.shape[1:]), self.image_shape
    if got != shape and not (shape[-1] == 1 and got == shape[:-1]):
      raise ConfigError(f"Input of shape {tuple(x.shape)} does not match model.image_shape="
                        f"{shape}; set model.image_shape to the data's shape.")
    return self.encoder(x)

  def decode(self, z):
    """Code [B, latent_dim] -> logits [B, *image_shape]."""
    return self.decoder(z)
