"""The classic small image CNN: conv 32 3x3, pool, conv 64 3x3, pool, dense 64, softmax."""

from typing import Sequence

import einops
import flax.linen as nn

from aigc_jax.layers.dense import Conv, Dense


class Model(nn.Module):
  features: Sequence[int] = (32, 64)
  hidden: int = 64
  num_classes: int = 10
  dropout: float = 0.0
  weight_init: str = "lecun"

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    if x.ndim == 3:  # (batch, height, width) -> one channel
      x = x[..., None]
    for f in self.features:
      x = nn.relu(Conv(f, (3, 3), init=self.weight_init)(x))
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = einops.rearrange(x, "b h w c -> b (h w c)")
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    x = nn.relu(Dense(self.hidden, names=("embed", "mlp"), init=self.weight_init)(x))
    self.sow("intermediates", "features", x)  # penultimate features (FID)
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return Dense(self.num_classes, names=("mlp", "classes"), init=self.weight_init)(x)
