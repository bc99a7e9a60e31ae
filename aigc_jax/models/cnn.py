"""Small image CNNs: by default the classic conv 32 3x3, pool, conv 64 3x3, pool, dense 64.

The layer shapes are fields, so the same module is the tanh CNN of the DP-SGD literature
(Papernot et al. 2021, Tramer & Boneh 2021): conv 16 8x8 stride 2 (same padding), max-pool 2
stride 1, conv 32 4x4 stride 2, max-pool 2 stride 1, dense 32, tanh throughout (26,010
parameters on 28x28 images). No batch norm: per-example gradients stay defined.
"""

from typing import Sequence

import einops
import flax.linen as nn

from aigc_jax.errors import ConfigError
from aigc_jax.layers.dense import Conv, Dense

ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh, "gelu": nn.gelu}


class Model(nn.Module):
  features: Sequence[int] = (32, 64)
  hidden: int = 64
  num_classes: int = 10
  dropout: float = 0.0
  weight_init: str = "lecun"
  kernels: Sequence[int] = (3, 3)
  strides: Sequence[int] = (1, 1)
  padding: Sequence[str] = ("VALID", "VALID")
  pool_stride: int = 2
  activation: str = "relu"

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    if self.activation not in ACTIVATIONS:
      raise ConfigError(f"model.activation={self.activation!r}; valid: {', '.join(ACTIVATIONS)}.")
    if not len(self.features) == len(self.kernels) == len(self.strides) == len(self.padding):
      raise ConfigError("model.features, kernels, strides and padding need one entry per "
                        f"conv layer; got {len(self.features)}, {len(self.kernels)}, "
                        f"{len(self.strides)} and {len(self.padding)}.")
    act = ACTIVATIONS[self.activation]
    if x.ndim == 3:  # (batch, height, width) -> one channel
      x = x[..., None]
    for f, k, s, p in zip(self.features, self.kernels, self.strides, self.padding):
      x = act(Conv(f, (k, k), strides=s, padding=p, init=self.weight_init)(x))
      x = nn.max_pool(x, (2, 2), strides=(self.pool_stride,) * 2)
    x = einops.rearrange(x, "b h w c -> b (h w c)")
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    x = act(Dense(self.hidden, names=("embed", "mlp"), init=self.weight_init)(x))
    self.sow("intermediates", "features", x)  # penultimate features (FID)
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return Dense(self.num_classes, names=("mlp", "classes"), init=self.weight_init)(x)
