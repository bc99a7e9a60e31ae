"""DCGAN generator and discriminator (Radford et al. 2016) in one module, for the GAN task.

Generator: z (+ a label embedding when class-conditional) -> dense to (size/4)^2 x 4w -> batch
norm, ReLU -> transposed convolutions 2w (stride 1) and w (stride 2) with batch norm and ReLU ->
transposed convolution to the image (stride 2), tanh; w=64 gives 7x7x256 -> 128 -> 64 for MNIST.
Discriminator: strided convolutions w and 2w with LeakyReLU(0.2) -> a dense logit; batch norm
on the second layer unless `critic=True` (WGAN-GP's penalty needs per-example gradients); a
class-conditional model adds the projection term <embed(y), h> (Miyato & Koyama 2018).
The parameters are {"generator": ..., "discriminator": ...}, one optimiser per player.
"""

import einops
import flax.linen as nn
import jax.numpy as jnp

from aigc_jax.errors import ConfigError
from aigc_jax.layers.conv import ConvTranspose
from aigc_jax.layers.dense import Conv, Dense


def check(image_size: int, channels: int, latent_dim: int, num_classes: int) -> None:
  """Config-time checks, before anything is built or compiled."""
  if image_size < 8 or image_size % 4:
    raise ConfigError(f"model.image_size={image_size}: the generator upsamples (size/4) x 2 x 2, "
                      "so the size must be a multiple of 4 and at least 8 (28 for MNIST).")
  if channels not in (1, 3):
    raise ConfigError(f"model.channels={channels}; valid: 1 (grey) or 3 (RGB).")
  if latent_dim <= 0 or num_classes < 0:
    raise ConfigError(f"model.latent_dim must be positive and model.num_classes >= 0 "
                      f"(got {latent_dim}, {num_classes}).")


def _conv_t(features: int, stride: int, name: str):
  # Same parameters and function as nn.ConvTranspose(padding="SAME", use_bias=False); fast on CPU.
  return ConvTranspose(
      features, (5, 5), strides=(stride, stride), name=name,
      kernel_init=nn.with_logical_partitioning(nn.initializers.normal(0.02),
                                               (None, None, "conv_in", "conv_out")))


def _bn(train: bool, name: str):
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)


class Generator(nn.Module):
  image_size: int
  channels: int
  width: int
  num_classes: int

  @nn.compact
  def __call__(self, z_BZ, labels_B=None, *, train: bool = False):
    if self.num_classes:
      z_BZ = jnp.concatenate([z_BZ, nn.Embed(self.num_classes, z_BZ.shape[-1], name="label")(
          labels_B)], axis=-1)
    s, w = self.image_size // 4, self.width
    h = Dense(s * s * 4 * w, names=("embed", "mlp"), name="project")(z_BZ)
    h = nn.relu(_bn(train, "bn0")(h))
    h = einops.rearrange(h, "b (h w c) -> b h w c", h=s, w=s)
    h = nn.relu(_bn(train, "bn1")(_conv_t(2 * w, 1, "up1")(h)))
    h = nn.relu(_bn(train, "bn2")(_conv_t(w, 2, "up2")(h)))
    return jnp.tanh(_conv_t(self.channels, 2, "to_image")(h))


class Discriminator(nn.Module):
  width: int
  batch_norm: bool
  num_classes: int

  @nn.compact
  def __call__(self, x_BHWC, labels_B=None, *, train: bool = False):
    h = nn.leaky_relu(Conv(self.width, (5, 5), strides=2, padding="SAME", name="down1")(x_BHWC),
                      0.2)
    h = Conv(2 * self.width, (5, 5), strides=2, padding="SAME", name="down2")(h)
    if self.batch_norm:
      h = _bn(train, "bn")(h)
    h = einops.rearrange(nn.leaky_relu(h, 0.2), "b h w c -> b (h w c)")
    logit_B = Dense(1, names=("mlp", None), name="logit")(h)[:, 0]
    if self.num_classes:  # projection discriminator
      e = nn.Embed(self.num_classes, h.shape[-1], name="label")(labels_B)
      logit_B = logit_B + jnp.sum(e * h, axis=-1)
    return logit_B


class Model(nn.Module):
  image_size: int = 28
  channels: int = 1
  width: int = 64
  latent_dim: int = 100
  num_classes: int = 0  # > 0: class-conditional generator and projection discriminator
  critic: bool = False  # True: no batch norm in the discriminator (WGAN-GP)

  def setup(self):
    check(self.image_size, self.channels, self.latent_dim, self.num_classes)
    self.generator = Generator(self.image_size, self.channels, self.width, self.num_classes)
    self.discriminator = Discriminator(self.width, not self.critic, self.num_classes)

  def __call__(self, z_BZ, x_BHWC, labels_B=None, *, train: bool = False):
    """Both players at once (what `init` needs): (generated images, logits of x)."""
    return (self.generate(z_BZ, labels_B, train=train),
            self.discriminate(x_BHWC, labels_B, train=train))

  def generate(self, z_BZ, labels_B=None, *, train: bool = False):
    return self.generator(z_BZ, labels_B, train=train)

  def discriminate(self, x_BHWC, labels_B=None, *, train: bool = False):
    return self.discriminator(x_BHWC, labels_B, train=train)
