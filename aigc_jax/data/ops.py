"""Preprocessing ops, declared in the config as "op1(args)|op2(args)" (big_vision style).

Each op is a factory: `op(*args, **kwargs)` returns a pure function example -> example over a dict
of numpy arrays. `parse` checks every name and argument at config time, before any data is read.
"""

from typing import Callable

import numpy as np

from aigc_jax.errors import ConfigError
from aigc_jax.registry import parse_calls

Example = dict
OPS: dict[str, Callable[..., Callable[[Example], Example]]] = {}


def op(fn):
  OPS[fn.__name__] = fn
  return fn


@op
def value_range(lo: float = 0.0, hi: float = 1.0, key: str = "image", in_min: float = 0.0,
                in_max: float = 255.0):
  """Linearly maps [in_min, in_max] (uint8 pixels by default) to float32 [lo, hi]."""
  scale = (hi - lo) / (in_max - in_min)

  def fn(ex):
    return {**ex, key: ((np.asarray(ex[key], np.float32) - in_min) * scale + lo)}

  return fn


@op
def standardize(mean: float, std: float, key: str = "image"):
  """(x - mean) / std as float32."""
  return lambda ex: {**ex, key: (np.asarray(ex[key], np.float32) - mean) / std}


RESIZE_METHODS = ("nearest", "bilinear", "bicubic", "lanczos", "box")


@op
def resize(size, key: str = "image", method: str = "bilinear"):
  """Resizes an HxW or HxWxC image to `size` (int: square, or (height, width)) with Pillow.

  Channels are resized one by one as float32 images, so any dtype and channel count works;
  integer images are rounded and clipped back to their dtype.
  """
  from PIL import Image  # pylint: disable=import-outside-toplevel
  if method not in RESIZE_METHODS:
    raise ConfigError(f"resize(method={method!r}); valid methods: {', '.join(RESIZE_METHODS)}.")
  hw = (size, size) if isinstance(size, int) else tuple(size)
  if len(hw) != 2 or not all(isinstance(s, int) and s > 0 for s in hw):
    raise ConfigError(f"resize({size!r}): size must be a positive int or (height, width).")
  h, w = hw
  resample = Image.Resampling[method.upper()]

  def fn(ex):
    x = np.asarray(ex[key])
    chans = x.reshape(x.shape[:2] + (-1,)).astype(np.float32)
    planes = [Image.fromarray(np.ascontiguousarray(chans[..., c]))  # mode "F"
              for c in range(chans.shape[-1])]
    out = np.stack([np.asarray(p.resize((w, h), resample)) for p in planes], -1)
    if np.issubdtype(x.dtype, np.integer):
      info = np.iinfo(x.dtype)
      out = np.clip(np.rint(out), info.min, info.max)
    return {**ex, key: out.reshape((h, w) + x.shape[2:]).astype(x.dtype)}

  return fn


@op
def cast(key: str, dtype: str):
  return lambda ex: {**ex, key: np.asarray(ex[key]).astype(dtype)}


@op
def rename(**mapping: str):
  """rename(image="input") renames feature `image` to `input`."""
  return lambda ex: {mapping.get(k, k): v for k, v in ex.items()}


@op
def keep(*keys: str):
  return lambda ex: {k: ex[k] for k in keys}


def parse(spec: str) -> Callable[[Example], Example]:
  """"op1|op2(...)" -> one composed function; unknown ops or bad arguments raise ConfigError."""
  fns = parse_calls(spec, OPS, "preprocessing op")

  def apply(ex):
    for text, fn in fns:
      try:
        ex = fn(ex)
      except KeyError as e:
        raise ConfigError(f"Preprocessing op {text!r} needs feature {e}; the example has "
                          f"{sorted(ex)}. Fix data.preprocess.") from None
    return ex

  return apply
