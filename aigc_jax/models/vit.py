"""A ViT classifier whose encoder is the masked autoencoder's, parameter for parameter.

Patch embedding, fixed 2-d sine-cosine positions, bidirectional blocks and the final norm are
built by `mae.encoder_layers` under the same names (patch_embed, block0 ..., norm), so a trained
`mae` run's encoder loads with `config.init.map = "patch_embed, block0, ..., norm"`
(`init_map(depth)`). The features are the patch codes averaged (as the MAE paper's fine-tuning
with global pooling); a dense head maps them to the classes.
"""

import flax.linen as nn
import jax.numpy as jnp

from aigc_jax.errors import ConfigError
from aigc_jax.layers.dense import Dense
from aigc_jax.models import mae


def init_map(depth: int) -> str:
  """The config.init.map copying an MAE run's encoder into this model."""
  return ", ".join(["patch_embed"] + [f"block{i}" for i in range(depth)] + ["norm"])


class Model(nn.Module):
  image_size: int = 28
  channels: int = 1
  patch: int = 4
  width: int = 64
  depth: int = 4
  num_heads: int = 4
  num_classes: int = 10
  dropout: float = 0.0  # before the head

  def __post_init__(self):
    mae.check(self)
    if self.num_classes < 2:
      raise ConfigError(f"model.num_classes={self.num_classes}; a classifier needs >= 2.")
    super().__post_init__()

  def setup(self):
    mae.encoder_layers(self)
    self.drop = nn.Dropout(self.dropout)
    self.head = Dense(self.num_classes, names=("embed", "classes"), name="head")

  def features(self, x):
    return jnp.mean(mae.encode_patches(self, x), axis=1)

  def __call__(self, x, *, train: bool = False):
    return self.head(self.drop(self.features(x), deterministic=not train))
