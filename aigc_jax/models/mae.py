"""Masked autoencoder (He et al. 2022) with a small ViT: encode the visible patches only, decode
all of them with a light decoder.

Images [B, H, W(, C)] are cut into p x p patches (p must divide H and W), embedded by one dense
layer, given fixed 2-d sine-cosine positions, and passed through bidirectional transformer
blocks (layers/transformer.py's Block with causal=False). `encode(x, ids_keep)` sees only the patches
in ids_keep [B, K]; `decode(latent, ids_restore)` appends a learned mask token for every hidden
patch, restores the patch order and predicts each patch's pixels [B, N, p*p*C]. `features(x)`
encodes every patch and averages them: the representation probes and fine-tuning read.
"""

import einops
import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from aigc_jax.errors import ConfigError
from aigc_jax.layers.transformer import Block, layer_norm, normal


def sincos_2d(grid_h: int, grid_w: int, dim: int) -> np.ndarray:
  """[grid_h * grid_w, dim] fixed positions: sin/cos of each axis's index, dim/2 channels each."""
  def axis(pos, d):
    omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d // 2))
    out = np.outer(pos, omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)

  ys, xs = np.meshgrid(np.arange(grid_h), np.arange(grid_w), indexing="ij")
  return np.concatenate([axis(ys.ravel(), dim // 2), axis(xs.ravel(), dim // 2)],
                        axis=1).astype(np.float32)


def _block(m, depth: int, name: str):
  return Block(m.num_heads, depth, 0.0, None, "", True, False, causal=False, name=name)


def check(m) -> None:
  if m.patch < 1 or m.image_size % m.patch:
    raise ConfigError(f"model.patch={m.patch} does not divide model.image_size="
                      f"{m.image_size}; pick a divisor (e.g. 4 or 7 for 28).")
  if m.width % 4 or m.width % m.num_heads:
    raise ConfigError(f"model.width={m.width} must be a multiple of 4 (2-d sine-cosine "
                      f"positions) and of model.num_heads={m.num_heads}.")


def encoder_layers(m) -> None:
  """The ViT encoder's layers, created in `m.setup()` under the same names in every model that
  uses it (mae.Model, vit.Model), so their parameters transfer one to one."""
  g = m.image_size // m.patch
  m.patch_embed = nn.Dense(m.width, name="patch_embed", kernel_init=(
      nn.with_logical_partitioning(nn.initializers.xavier_uniform(), (None, "embed"))))
  m.blocks = [_block(m, m.depth, f"block{i}") for i in range(m.depth)]
  m.norm = layer_norm(None, True, "norm")
  m.pos = sincos_2d(g, g, m.width)


def patchify(m, x):
  if x.ndim == 3:
    x = x[..., None]
  return einops.rearrange(x, "b (h p) (w q) c -> b (h w) (p q c)", p=m.patch, q=m.patch)


def encode_patches(m, x, ids_keep=None):
  """[B, K, width]: the patches of x in ids_keep (all when None) through `encoder_layers`."""
  h = m.patch_embed(patchify(m, x))
  h = h + jnp.asarray(m.pos, h.dtype)[None]  # compute dtype: config.compute_dtype
  if ids_keep is not None:
    h = jnp.take_along_axis(h, ids_keep[..., None], axis=1)
  for blk in m.blocks:
    h = blk(h, False)
  return m.norm(h)


class Model(nn.Module):
  image_size: int = 28
  channels: int = 1
  patch: int = 7
  width: int = 64
  depth: int = 4
  num_heads: int = 4
  decoder_width: int = 32
  decoder_depth: int = 1

  def __post_init__(self):
    check(self)
    if self.decoder_width % 4 or self.decoder_width % self.num_heads:
      raise ConfigError(f"model.decoder_width={self.decoder_width} must be a multiple of 4 "
                        f"(2-d sine-cosine positions) and of model.num_heads={self.num_heads}.")
    super().__post_init__()

  @property
  def num_patches(self) -> int:
    return (self.image_size // self.patch) ** 2

  def patchify(self, x):
    return patchify(self, x)

  def unpatchify(self, patches):
    g = self.image_size // self.patch
    return einops.rearrange(patches, "b (h w) (p q c) -> b (h p) (w q) c", h=g, w=g,
                            p=self.patch, q=self.patch)

  def setup(self):
    g = self.image_size // self.patch
    encoder_layers(self)
    self.decoder_embed = nn.Dense(self.decoder_width, name="decoder_embed")
    self.mask_token = self.param("mask_token", normal(0.02, (None, None, "embed")),
                                 (1, 1, self.decoder_width))
    self.decoder_blocks = [_block(self, self.decoder_depth, f"decoder_block{i}")
                           for i in range(self.decoder_depth)]
    self.decoder_norm = layer_norm(None, True, "decoder_norm")
    self.decoder_pred = nn.Dense(self.patch * self.patch * self.channels, name="decoder_pred")
    self.decoder_pos = sincos_2d(g, g, self.decoder_width)

  def encode(self, x, ids_keep=None):
    """[B, K, width]: the visible patches (all when ids_keep is None), encoded."""
    return encode_patches(self, x, ids_keep)

  def decode(self, latent_BKD, ids_restore_BN):
    """[B, N, p*p*C]: every patch's pixels, from the visible ones' codes and mask tokens."""
    b, k = latent_BKD.shape[:2]
    h = self.decoder_embed(latent_BKD)
    fill = jnp.broadcast_to(self.mask_token, (b, self.num_patches - k, self.decoder_width))
    h = jnp.take_along_axis(jnp.concatenate([h, fill], axis=1), ids_restore_BN[..., None], axis=1)
    h = h + jnp.asarray(self.decoder_pos, h.dtype)[None]
    for blk in self.decoder_blocks:
      h = blk(h, False)
    return self.decoder_pred(self.decoder_norm(h))

  def features(self, x):
    return jnp.mean(self.encode(x), axis=1)

  def __call__(self, x, *, train: bool = False):
    """Every patch through encoder and decoder (initialises both)."""
    del train
    n = self.num_patches
    ids = jnp.broadcast_to(jnp.arange(n), (x.shape[0], n))
    return self.decode(self.encode(x), ids)


def mask_ids(rng, batch: int, num_patches: int, ratio: float):
  """(ids_keep [B, K], ids_restore [B, N], mask [B, N] with 1 = hidden): a uniform random subset
  of K = round(N (1 - ratio)) patches per example, as MAE draws it (argsort of noise)."""
  import jax  # pylint: disable=import-outside-toplevel
  keep = max(1, int(round(num_patches * (1.0 - ratio))))
  ids_shuffle = jnp.argsort(jax.random.uniform(rng, (batch, num_patches)), axis=1)
  ids_restore = jnp.argsort(ids_shuffle, axis=1)
  mask = (jnp.arange(num_patches)[None] >= keep).astype(jnp.float32)
  return ids_shuffle[:, :keep], ids_restore, jnp.take_along_axis(mask, ids_restore, axis=1)

