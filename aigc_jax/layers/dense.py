"""Dense and convolution layers whose weights carry logical axis names, with a choice of init.

`init="torch"` reproduces PyTorch's default initialisation (uniform in +-1/sqrt(fan_in) for
kernel and bias), which papers trained in PyTorch implicitly depend on; "lecun" is Flax's default.
"""

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

INITS = ("lecun", "torch")


def _uniform(limit):
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -limit, limit)


def _inits(init: str, fan_in: int):
  if init == "torch":
    return _uniform(1 / math.sqrt(fan_in)), _uniform(1 / math.sqrt(fan_in))
  if init == "lecun":
    return nn.initializers.lecun_normal(), nn.initializers.zeros_init()
  raise ValueError(f"Unknown init {init!r}; valid: {INITS}")


class Dense(nn.Module):
  features: int
  names: tuple = ("embed", "mlp")  # logical axes of the kernel (in, out)
  init: str = "lecun"
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x):
    k_init, b_init = _inits(self.init, x.shape[-1])
    return nn.Dense(
        self.features, dtype=self.dtype,
        kernel_init=nn.with_logical_partitioning(k_init, self.names),
        bias_init=nn.with_logical_partitioning(b_init, self.names[-1:]))(x)


class Conv(nn.Module):
  features: int
  kernel_size: Sequence[int]
  strides: int = 1
  padding: str | Sequence = "VALID"
  init: str = "lecun"
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x):
    fan_in = x.shape[-1] * math.prod(self.kernel_size)
    k_init, b_init = _inits(self.init, fan_in)
    spatial = (None,) * len(self.kernel_size)
    return nn.Conv(
        self.features, tuple(self.kernel_size), strides=self.strides, padding=self.padding,
        dtype=self.dtype,
        kernel_init=nn.with_logical_partitioning(k_init, spatial + ("conv_in", "conv_out")),
        bias_init=nn.with_logical_partitioning(b_init, ("conv_out",)))(x)
