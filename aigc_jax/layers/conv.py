"""A transposed convolution ("SAME" padding, no bias) that is fast on XLA:CPU too.

XLA:CPU runs a strided transposed convolution (a convolution with input dilation) on a slow
generic path: for DCGAN's 5x5 stride-2 layer at batch 64 the kernel gradient took 357 ms
against 5 ms for a plain convolution of the same size. On CPU, `impl="auto"` computes the same
function as s*s stride-1 convolutions, one per output phase, on the undilated input (each with
the kernel taps that reach that phase), interleaved by depth-to-space. The parameters and the
result are those of `flax.linen.ConvTranspose(padding="SAME", use_bias=False)`;
GPU and TPU keep the native operation, which cuDNN / the TPU compiler run well.
"""

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

IMPLS = ("auto", "xla", "phases")
_DN = ("NHWC", "HWIO", "NHWC")


def _phase_taps(k: int, s: int):
  """For a 1-D "SAME" transposed conv (lax's padding): offsets (lo, hi) of the input window
  and, per output phase a (output o = s*m + a), the kernel tap at each window offset (k: none)."""
  pad_a = k - 1 if s > k - 1 else int(np.ceil((k + s - 2) / 2))
  taps = {a: {(a + t - pad_a) // s: t for t in range(k) if (a + t - pad_a) % s == 0}
          for a in range(s)}
  offsets = [d for a in taps for d in taps[a]]
  lo, hi = min(offsets), max(offsets)
  table = np.array([[taps[a].get(d, k) for d in range(lo, hi + 1)] for a in range(s)])
  return lo, hi, table  # table[a, window position] = tap index (k = the zero tap)


def phase_conv_transpose(x_BHWC, kernel_HWIO, strides):
  """Equal to lax.conv_transpose(x, kernel, strides, "SAME") built from plain convolutions."""
  (kh, kw), (sh, sw) = kernel_HWIO.shape[:2], strides
  lo_h, hi_h, th = _phase_taps(kh, sh)
  lo_w, hi_w, tw = _phase_taps(kw, sw)
  k = jnp.pad(kernel_HWIO, ((0, 1), (0, 1), (0, 0), (0, 0)))  # index kh / kw: a zero tap
  # [sh, wh, sw, ww, I, O]: the sub-kernel of every (row phase, column phase).
  sub = k[th[:, :, None, None], tw[None, None, :, :]]
  sub = einops.rearrange(sub, "a u b v i o -> u v i (a b o)")
  y = lax.conv_general_dilated(x_BHWC, sub, (1, 1), ((-lo_h, hi_h), (-lo_w, hi_w)),
                               dimension_numbers=_DN)
  return einops.rearrange(y, "n h w (a b o) -> n (h a) (w b) o", a=sh, b=sw)


class ConvTranspose(nn.Module):
  features: int
  kernel_size: tuple
  strides: tuple = (1, 1)
  kernel_init: object = nn.initializers.lecun_normal()
  impl: str = "auto"  # auto: phases on CPU for strides > 1, else xla

  @nn.compact
  def __call__(self, x):
    if self.impl not in IMPLS:
      raise ValueError(f"Unknown ConvTranspose impl {self.impl!r}; valid: {IMPLS}")
    kernel = self.param("kernel", self.kernel_init,
                        tuple(self.kernel_size) + (x.shape[-1], self.features))
    kernel = kernel.astype(x.dtype)
    phases = self.impl == "phases" or (
        self.impl == "auto" and max(self.strides) > 1 and jax.default_backend() == "cpu")
    if phases:
      return phase_conv_transpose(x, kernel, self.strides)
    return lax.conv_transpose(x, kernel, self.strides, "SAME", dimension_numbers=_DN)
