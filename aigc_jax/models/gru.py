"""(Bi-directional) GRU classifier over a sequence: every time step's state feeds a dense layer.

With hidden 6, bidirectional, on length-40 inputs this is the MNIST-1D paper's GRU.
"""

import einops
import flax.linen as nn
import jax.numpy as jnp

from aigc_jax.layers.dense import Dense


class Model(nn.Module):
  hidden: int = 6
  bidirectional: bool = True
  num_classes: int = 10
  weight_init: str = "lecun"

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    del train
    if x.ndim == 2:  # (batch, length) -> one feature per step
      x = x[..., None]
    forward = nn.RNN(nn.GRUCell(self.hidden))
    # GRUCell's own zero carry is float32; in the inputs' dtype it also runs in bfloat16
    # (config.compute_dtype).
    carry = jnp.zeros((x.shape[0], self.hidden), x.dtype)
    if self.bidirectional:
      x = nn.Bidirectional(forward, nn.RNN(nn.GRUCell(self.hidden)))(
          x, initial_carry=(carry, carry))
    else:
      x = forward(x, initial_carry=carry)
    x = einops.rearrange(x, "b t h -> b (t h)")
    return Dense(self.num_classes, names=("embed", "classes"), init=self.weight_init)(x)
