"""Multinomial logistic regression: one dense layer on the flattened input."""

import einops
import flax.linen as nn

from aigc_jax.layers.dense import Dense


class Model(nn.Module):
  num_classes: int = 10
  weight_init: str = "lecun"

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    del train
    x = einops.rearrange(x, "b ... -> b (...)")
    return Dense(self.num_classes, names=("embed", "classes"), init=self.weight_init)(x)
