"""1-D convolutional classifier for sequences such as MNIST-1D (Greydanus 2020).

Three stride-2 convolutions (kernel 5, 3, 3; padding 1) with ReLU, then a dense layer on the
flattened features: the paper's CNN. `features` is the flattened convolution output, the encoder
of the MNIST-1D self-supervised recipe (models/contrastive.py wraps it with a projector).
"""

import einops
import flax.linen as nn

from aigc_jax.layers.dense import Conv, Dense


class Model(nn.Module):
  channels: int = 25
  kernel_sizes: tuple = (5, 3, 3)
  num_classes: int = 10
  weight_init: str = "lecun"

  def setup(self):
    self.convs = [Conv(self.channels, (k,), strides=2, padding=[(1, 1)], init=self.weight_init,
                       name=f"Conv_{i}") for i, k in enumerate(self.kernel_sizes)]
    self.head = Dense(self.num_classes, names=("embed", "classes"), init=self.weight_init,
                      name="Dense_0")

  def features(self, x):
    """The flattened output of the last convolution (MNIST-1D: 5 x 25 = 125 features)."""
    if x.ndim == 2:  # (batch, length) -> one input channel
      x = x[..., None]
    for conv in self.convs:
      x = nn.relu(conv(x))
    return einops.rearrange(x, "b l c -> b (l c)")

  def __call__(self, x, *, train: bool = False):
    del train
    return self.head(self.features(x))
