"""Image grids as PNG files: a batch of images tiled into one picture a person can look at."""


import einops
import numpy as np

from aigc_jax import writers


def tile(images_NHWC, ncol: int, value_range=(-1.0, 1.0), pad: int = 2) -> np.ndarray:
  """[N, H, W, C] floats in `value_range` -> one uint8 [rows*(H+pad)+pad, ...] picture."""
  x = np.asarray(images_NHWC, np.float32)
  lo, hi = value_range
  x = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
  n, _, _, c = x.shape
  rows = -(-n // ncol)
  x = np.concatenate([x, np.zeros((rows * ncol - n,) + x.shape[1:], x.dtype)])
  x = np.pad(x, ((0, 0), (pad, 0), (pad, 0), (0, 0)))
  grid = einops.rearrange(x, "(r q) h w c -> (r h) (q w) c", q=ncol)
  grid = np.pad(grid, ((0, pad), (0, pad), (0, 0)))
  grid = (grid * 255.0 + 0.5).astype(np.uint8)
  return grid[..., 0] if c == 1 else grid


def save(images_NHWC, path: str, ncol: int, value_range=(-1.0, 1.0)) -> str:
  """Writes the tiled grid as a PNG (atomically), returns the path."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  import io  # pylint: disable=import-outside-toplevel
  buf = io.BytesIO()
  Image.fromarray(tile(images_NHWC, ncol, value_range)).save(buf, format="PNG")
  writers.atomic_write(path, buf.getvalue())
  return path
