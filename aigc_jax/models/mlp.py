"""Multi-layer perceptron with ReLU on the flattened input.

`residual=True` adds each hidden layer's output to its input where the widths match
(h = h + relu(W h)), as the MNIST-1D paper's MLP does.
"""

from typing import Sequence

import einops
import flax.linen as nn

from aigc_jax.layers.dense import Dense


class Model(nn.Module):
  hidden: Sequence[int] = (100, 100)
  num_classes: int = 10
  dropout: float = 0.0
  residual: bool = False
  weight_init: str = "lecun"

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    x = einops.rearrange(x, "b ... -> b (...)")
    for width in self.hidden:
      h = nn.relu(Dense(width, names=("embed", "mlp"), init=self.weight_init)(x))
      h = nn.Dropout(self.dropout, deterministic=not train)(h)
      x = x + h if self.residual and x.shape[-1] == width else h
    return Dense(self.num_classes, names=("mlp", "classes"), init=self.weight_init)(x)
