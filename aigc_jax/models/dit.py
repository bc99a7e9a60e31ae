"""A diffusion transformer (DiT, Peebles & Xie 2023) over image patches.

The image is cut into patch x patch squares (mae.patchify), each embedded linearly, with fixed
2-d sine-cosine positions; the project's transformer blocks run bidirectionally with adaLN-Zero
conditioning (layers/transformer.py, `adaln=True`) on c = embed(t) + embed(label); a final
adaptive LayerNorm and a zero-initialised linear layer give each patch's pixels, which are put
back in place. Labels have one extra row, index num_classes, for classifier-free guidance's
"no label". DiT-XL/2 is depth 28, width 1152, 16 heads, patch 2 (on a 32x32x4 latent).

A caption-conditioned model (`text`, models/clip.py) adds its caption's embedding to c instead.

Input [B, H, W, C] with H divisible by `patch`; t [B] in [0, 1]; labels [B], caption ids [B, L]
or None.
"""

from collections.abc import Mapping

import einops
import flax.linen as nn
import jax.numpy as jnp
from flax.core import FrozenDict

from aigc_jax.errors import ConfigError
from aigc_jax.layers.transformer import Block, zeros
from aigc_jax.models import clip, mae
from aigc_jax.models.unet import timestep_embedding

# The paper's configurations: (depth, width, heads).
SIZES = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}


def check(m) -> None:
  if m.image_size % m.patch:
    raise ConfigError(f"model.image_size={m.image_size} is not divisible by model.patch="
                      f"{m.patch}: DiT cuts the image into patch x patch squares.")
  if m.width % m.num_heads or (m.width // m.num_heads) % 2:
    raise ConfigError(f"model.width={m.width} must split into model.num_heads={m.num_heads} "
                      "heads of even size.")
  if m.width % 4:
    raise ConfigError(f"model.width={m.width} must be a multiple of 4 (2-d sin-cos positions).")
  clip.check_condition(m)


def forward_macs(m) -> int:
  """Multiply-accumulates of one image's forward pass, as the DiT paper counts its "Gflops"
  (118.6 for XL/2 on a 32x32x4 latent): the dense layers per patch token, attention's two
  T x T x D products, and the per-image conditioning (time MLP, adaLN projections). The compile
  tool takes 2 x 3 x this as a training step's useful FLOPs per image (its MFU's numerator)."""
  tokens, d = (m.image_size // m.patch) ** 2, m.width
  pixels = m.patch * m.patch * m.channels
  per_token = 2 * pixels * d + m.depth * 12 * d * d  # patch in/out, qkv + proj + 4x MLP
  attention = m.depth * 2 * tokens * tokens * d
  per_image = 256 * d + d * d + m.depth * 6 * d * d + 2 * d * d  # time MLP, adaLN, final adaLN
  return tokens * per_token + attention + per_image


def train_flops_per_example(model_config) -> float:
  """FLOPs of one image's forward and backward pass (3 x forward, 2 FLOPs a MAC)."""
  return 6.0 * forward_macs(model_config)


class Model(nn.Module):
  image_size: int = 28
  channels: int = 1
  patch: int = 4
  width: int = 128
  depth: int = 6
  num_heads: int = 4
  num_classes: int = 0
  text: Mapping = FrozenDict()  # caption conditioning, as unet's (models/clip.py)
  vocab_size: int = 0
  text_dim: int = 64
  text_pooling: str = "mean"
  dropout: float = 0.0
  attention_impl: str = ""
  dtype: jnp.dtype | None = None

  def __post_init__(self):
    check(self)
    super().__post_init__()

  @nn.compact
  def __call__(self, x_BHWC, t_B, cond=None, *, train: bool = False):
    g = self.image_size // self.patch
    x = mae.patchify(self, x_BHWC)
    x = nn.Dense(self.width, dtype=self.dtype, name="patch_embed", kernel_init=(
        nn.with_logical_partitioning(nn.initializers.xavier_uniform(), (None, "embed"))))(x)
    x = x + mae.sincos_2d(g, g, self.width)[None].astype(x.dtype)
    c = timestep_embedding(t_B, 256)
    c = nn.Dense(self.width, dtype=self.dtype, name="time1")(c)
    c = nn.Dense(self.width, dtype=self.dtype, name="time2")(nn.silu(c))
    emb = clip.embed_condition(self, cond, self.width)
    if emb is not None:
      c = c + emb
    for i in range(self.depth):
      x = Block(self.num_heads, self.depth, self.dropout, self.dtype, self.attention_impl,
                True, False, causal=False, adaln=True, name=f"block{i}")(x, train, cond_BC=c)
    mod = nn.Dense(2 * self.width, dtype=self.dtype, name="final_adaln",
                   kernel_init=zeros(("embed", "mlp")), bias_init=zeros(("mlp",)))(nn.silu(c))
    shift, scale = jnp.split(mod[:, None, :], 2, axis=-1)
    x = nn.LayerNorm(epsilon=1e-6, use_scale=False, use_bias=False, dtype=self.dtype)(x)
    x = x * (1.0 + scale) + shift
    x = nn.Dense(self.patch * self.patch * self.channels, dtype=self.dtype, name="out",
                 kernel_init=zeros(("embed", None)), bias_init=zeros((None,)))(x)
    x = einops.rearrange(x, "b (h w) (p q c) -> b (h p) (w q) c", h=g, w=g, p=self.patch,
                         q=self.patch)
    return x.astype(jnp.float32)
