"""ConvLSTM frame predictor (Shi et al. 2015), the deterministic baseline of video prediction.

Frames are folded into patches (`patch` x `patch` pixels become channels, as OpenSTL does for
Moving MNIST), a stack of convolutional LSTM cells (flax's `nn.ConvLSTMCell`) runs over time, and a
1x1 convolution of the top state predicts the next frame's patches. The given frames are read as
they are; after the last one the model reads its own predictions, so training unrolls exactly
what prediction does (no teacher forcing on the future, no scheduled sampling).

Input [B, T_given, H, W, C] with H and W divisible by `patch`; output [B, num_future, H, W, C].
"""

import einops
import flax.linen as nn
import jax.numpy as jnp

from aigc_jax.errors import ConfigError
from aigc_jax.layers.dense import Conv


class Model(nn.Module):
  hidden: tuple = (64, 64)  # features of each ConvLSTM layer
  kernel_size: int = 5
  patch: int = 4
  dtype: str = ""

  @nn.compact
  def __call__(self, given, num_future: int):
    b, t_given, h, w, c = given.shape
    p = self.patch
    if h % p or w % p:
      raise ConfigError(f"convlstm: frames {h}x{w} are not divisible by model.patch={p}.")
    dtype = jnp.dtype(self.dtype) if self.dtype else None
    x = einops.rearrange(given, "b t (h p) (w q) c -> t b h w (p q c)", p=p, q=p)
    cells = [nn.ConvLSTMCell(f, (self.kernel_size,) * 2, dtype=dtype, name=f"cell{i}")
             for i, f in enumerate(self.hidden)]
    out = Conv(x.shape[-1], (1, 1), dtype=dtype, name="out")
    states = [(jnp.zeros(x.shape[1:4] + (f,), x.dtype),) * 2 for f in self.hidden]
    # Unrolled in Python, not nn.scan: XLA:CPU ran the scanned cell's train step 17x slower
    # (11.7 s against 0.70 s for two layers of 16 at batch 16; benchmarks/video_predictors.py).
    preds = []
    for t in range(t_given + num_future - 1):
      h = x[t] if t < t_given else preds[-1]
      for i, cell in enumerate(cells):
        states[i], h = cell(states[i], h)
      preds.append(out(h).astype(x.dtype))
    future = jnp.stack(preds[t_given - 1:])  # frames t_given ... t_given + num_future - 1
    return einops.rearrange(future, "t b h w (p q c) -> b t (h p) (w q) c", p=p, q=p, c=c)
