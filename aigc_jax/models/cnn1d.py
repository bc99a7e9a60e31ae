"""1-D convolutional classifier for sequences such as MNIST-1D (Greydanus 2020).

Three stride-2 convolutions (kernel 5, 3, 3; padding 1) with ReLU, then a dense layer on the
flattened features: the paper's CNN.
"""

import einops
import flax.linen as nn

from aigc_jax.layers.dense import Conv, Dense


class Model(nn.Module):
  channels: int = 25
  kernel_sizes: tuple = (5, 3, 3)
  num_classes: int = 10
  weight_init: str = "lecun"

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    del train
    if x.ndim == 2:  # (batch, length) -> one input channel
      x = x[..., None]
    for k in self.kernel_sizes:
      x = nn.relu(Conv(self.channels, (k,), strides=2, padding=[(1, 1)], init=self.weight_init)(x))
    x = einops.rearrange(x, "b l c -> b (l c)")
    return Dense(self.num_classes, names=("embed", "classes"), init=self.weight_init)(x)
