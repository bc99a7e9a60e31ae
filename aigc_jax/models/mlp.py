"""Multi-layer perceptron with ReLU on the flattened input."""

from typing import Sequence

import einops
import flax.linen as nn

from aigc_jax.layers.dense import Dense


class Model(nn.Module):
  hidden: Sequence[int] = (100, 100)
  num_classes: int = 10
  dropout: float = 0.0
  weight_init: str = "lecun"

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    x = einops.rearrange(x, "b ... -> b (...)")
    for width in self.hidden:
      x = nn.relu(Dense(width, names=("embed", "mlp"), init=self.weight_init)(x))
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return Dense(self.num_classes, names=("mlp", "classes"), init=self.weight_init)(x)
