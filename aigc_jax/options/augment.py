"""Random data augmentation in pure JAX, declared as "views(2)|random_crop(4)|gaussian_noise(0.1)".

Augmentations run inside the jitted train step on the step's rng, so a resumed run replays the
same draws. Most ops are written for ONE example array (an [H, W] or [H, W, C] image, a [T, H, W, C]
video for the video ops, whose one draw applies to every frame alike); `Augment`
reads `batch[key]`, vmaps the op over its leading dims with one key per example and writes
`batch[out or key]`. `views(n)` adds a leading view dim ([B, ...] -> [B, n, ...]); later ops on that
key vmap over both dims, so every view of every example gets its own draw. The number of leading
dims per key is tracked at parse time, so nothing about it is inferred from shapes.
"""

import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from aigc_jax.registry import parse_calls
from aigc_jax.errors import ConfigError
from aigc_jax.options import Active

PerExample = Callable[[jax.Array, jax.Array], jax.Array]  # f(rng, x) -> x on one example array
AUGMENTS: dict[str, Callable] = {}


class _Step(NamedTuple):
  fn: PerExample
  key: str
  out: str


class _Views(NamedTuple):
  n: int
  key: str


def augment(fn):
  """Registers a per-example op `fn(*args, **kw) -> f(rng, x)`; the registered factory adds the
  `key=` (array to read) and `out=` (array to write, default `key`) arguments every op shares."""

  @functools.wraps(fn)
  def factory(*args, key: str = "input", out: str | None = None, **kwargs):
    for name, value in (("key", key), ("out", out)):
      if value is not None and not isinstance(value, str):
        raise ConfigError(f"{fn.__name__}({name}={value!r}): {name} must be a string.")
    return _Step(fn(*args, **kwargs), key, out or key)

  AUGMENTS[fn.__name__] = factory
  return factory


def views(n: int = 2, key: str = "input"):
  """[B, ...] -> [B, n, ...]: n copies of each example, each augmented independently afterwards."""
  _check_int("views", "n", n, 1)
  if not isinstance(key, str):
    raise ConfigError(f"views(key={key!r}): key must be a string.")
  return _Views(n, key)


AUGMENTS["views"] = views  # Not per example: it changes the leading dims, so `Augment` handles it.


def _check_number(op: str, name: str, value, lo=None, hi=None) -> float:
  ok = isinstance(value, (int, float)) and not isinstance(value, bool)
  if not (ok and (lo is None or value >= lo) and (hi is None or value <= hi)):
    valid = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
    raise ConfigError(f"{op}({name}={value!r}): {name} must be a number in {valid}.")
  return float(value)  # An int probability would make jax.random.bernoulli fail.


def _check_int(op: str, name: str, value, lo: int):
  if not isinstance(value, int) or isinstance(value, bool) or value < lo:
    raise ConfigError(f"{op}({name}={value!r}): {name} must be an integer >= {lo}.")


def _check_range(op: str, name: str, value, lo=None, hi=None) -> tuple[float, float]:
  """A (low, high) pair with lo <= low <= high <= hi."""
  if not (isinstance(value, (tuple, list)) and len(value) == 2):
    raise ConfigError(f"{op}({name}={value!r}): {name} must be a (low, high) pair.")
  for v in value:
    _check_number(op, name, v, lo, hi)
  if value[0] > value[1]:
    raise ConfigError(f"{op}({name}={value!r}): {name} needs low <= high.")
  return float(value[0]), float(value[1])


def _check_image(op: str, x):
  if x.ndim not in (2, 3):
    raise ConfigError(f"{op} needs [H, W] or [H, W, C] images per example; got shape {x.shape}. "
                      f"Apply it to an image key, after views() if any.")


def _sample(x, ys, xs, mode: str):
  """Bilinear x[ys, xs] for [H, W] grids of source coordinates, channel by channel."""
  sample = functools.partial(jax.scipy.ndimage.map_coordinates, coordinates=[ys, xs], order=1,
                             mode=mode, cval=0.0)
  return sample(x) if x.ndim == 2 else jax.vmap(sample, in_axes=2, out_axes=2)(x)


@augment
def random_crop(pad: int = 4):
  """Zero-pads H and W by `pad`, crops back at a uniform offset: a shift of up to +-pad pixels."""
  _check_int("random_crop", "pad", pad, 0)

  def f(rng, x):
    _check_image("random_crop", x)
    if pad == 0:
      return x
    padded = jnp.pad(x, [(pad, pad), (pad, pad)] + [(0, 0)] * (x.ndim - 2))
    oy, ox = jax.random.randint(rng, (2,), 0, 2 * pad + 1)
    return jax.lax.dynamic_slice(padded, (oy, ox) + (0,) * (x.ndim - 2), x.shape)

  return f


@augment
def random_resized_crop(scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3)):
  """SimCLR crop: a random `scale` fraction of the area with aspect ratio (w/h) in `ratio`,
  resized back to HxW bilinearly. Crops larger than the image are clamped to it."""
  lo_s, hi_s = _check_range("random_resized_crop", "scale", scale, 1e-6, 1.0)
  lo_r, hi_r = _check_range("random_resized_crop", "ratio", ratio, 1e-6)

  def f(rng, x):
    _check_image("random_resized_crop", x)
    h, w = x.shape[:2]
    k_area, k_ratio, k_pos = jax.random.split(rng, 3)
    area = jax.random.uniform(k_area, (), minval=lo_s, maxval=hi_s) * h * w
    r = jnp.exp(jax.random.uniform(k_ratio, (), minval=math.log(lo_r), maxval=math.log(hi_r)))
    ch = jnp.clip(jnp.sqrt(area / r), 1.0, h)
    cw = jnp.clip(jnp.sqrt(area * r), 1.0, w)
    y0, x0 = jax.random.uniform(k_pos, (2,)) * jnp.stack([h - ch, w - cw])
    # Pixel centres of the output map onto the crop's pixel centres; a full crop is the identity.
    ys = y0 + (jnp.arange(h, dtype=jnp.float32) + 0.5) * (ch / h) - 0.5
    xs = x0 + (jnp.arange(w, dtype=jnp.float32) + 0.5) * (cw / w) - 0.5
    ys, xs = jnp.meshgrid(ys, xs, indexing="ij")
    return _sample(x, ys, xs, "nearest")

  return f


def _with_probability(op: str, p: float, check, transform):
  """An op applying `transform` to the whole example with probability p (one draw each)."""
  p = _check_number(op, "p", p, 0, 1)

  def f(rng, x):
    check(op, x)
    return jnp.where(jax.random.bernoulli(rng, p), transform(x), x)

  return f


@augment
def flip_lr(p: float = 0.5):
  """Mirrors the image left-right with probability p."""
  return _with_probability("flip_lr", p, _check_image, lambda x: x[:, ::-1])


@augment
def rotate(degrees: float = 10.0):
  """Rotates about the image centre by an angle uniform in [-degrees, degrees]; zero fill."""
  degrees = _check_number("rotate", "degrees", degrees, 0)

  def f(rng, x):
    _check_image("rotate", x)
    h, w = x.shape[:2]
    a = jnp.deg2rad(jax.random.uniform(rng, (), minval=-degrees, maxval=degrees))
    ii, jj = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                          indexing="ij")
    dy, dx = ii - (h - 1) / 2, jj - (w - 1) / 2
    cos, sin = jnp.cos(a), jnp.sin(a)
    # Written as offsets from (ii, jj) so that angle 0 samples exactly on the pixel grid.
    ys = ii + (cos - 1) * dy - sin * dx
    xs = jj + sin * dy + (cos - 1) * dx
    return _sample(x, ys, xs, "constant")

  return f


@augment
def gaussian_noise(std: float = 0.1, clip=None):
  """x + N(0, std^2), then clipped to clip=(lo, hi) if given."""
  std = _check_number("gaussian_noise", "std", std, 0)
  bounds = None if clip is None else _check_range("gaussian_noise", "clip", clip)

  def f(rng, x):
    y = x + std * jax.random.normal(rng, x.shape, jnp.float32)
    return y if bounds is None else jnp.clip(y, *bounds)

  return f


@augment
def binarize():
  """Dynamic binarisation: x -> Bernoulli(x) as float32 0/1, for x in [0, 1]."""
  return lambda rng, x: jax.random.bernoulli(rng, jnp.clip(x, 0, 1)).astype(jnp.float32)


@augment
def random_mask(rate: float = 0.5, patch: int = 1, value: float = 0.0):
  """Sets each patch x patch block (all channels) to `value` with probability `rate`."""
  rate = _check_number("random_mask", "rate", rate, 0, 1)
  _check_int("random_mask", "patch", patch, 1)
  value = _check_number("random_mask", "value", value)

  def f(rng, x):
    _check_image("random_mask", x)
    h, w = x.shape[:2]
    if h % patch or w % patch:
      raise ConfigError(f"random_mask(patch={patch}) needs H and W divisible by {patch}; got an "
                        f"image of shape {x.shape}. Pick a patch size that divides both.")
    m = jax.random.bernoulli(rng, rate, (h // patch, w // patch))
    m = jnp.repeat(jnp.repeat(m, patch, 0), patch, 1)
    return jnp.where(m if x.ndim == 2 else m[:, :, None], jnp.float32(value), x)

  return f


def _check_sequence(op: str, x):
  if x.ndim not in (1, 2):
    raise ConfigError(f"{op} needs [L] or [L, C] sequences per example; got shape {x.shape}. "
                      f"Apply it to a sequence key, after views() if any.")


def _centred_time(length: int):
  """t = 0..L-1 centred on zero, as a column for [L, C] broadcasting."""
  return jnp.arange(length, dtype=jnp.float32) - (length - 1) / 2.0


def _along_time(x, t):
  return t if x.ndim == 1 else t[:, None]


@augment
def detrend():
  """Removes each channel's mean and least-squares linear trend over time (deterministic)."""

  def f(rng, x):
    del rng
    _check_sequence("detrend", x)
    t = _along_time(x, _centred_time(x.shape[0]))
    slope = jnp.sum(x * t, axis=0) / jnp.sum(t * t, axis=0)
    return x - jnp.mean(x, axis=0) - slope * t

  return f


@augment
def circular_shift(max_shift: int = 10, both_ways: bool = False):
  """Rolls a sequence in time by s, uniform in [0, max_shift) (or (-max_shift, max_shift) with
  both_ways): MNIST-1D's signals are translated copies of templates."""
  _check_int("circular_shift", "max_shift", max_shift, 1)
  lo = -max_shift + 1 if both_ways else 0

  def f(rng, x):
    _check_sequence("circular_shift", x)
    return jnp.roll(x, jax.random.randint(rng, (), lo, max_shift), axis=0)

  return f


@augment
def random_slope_offset(slope: float = 0.04, offset: float = 0.3):
  """x + a * t + b with a ~ N(0, slope^2), b ~ N(0, offset^2) per example (t centred time)."""
  slope = _check_number("random_slope_offset", "slope", slope, 0)
  offset = _check_number("random_slope_offset", "offset", offset, 0)

  def f(rng, x):
    _check_sequence("random_slope_offset", x)
    a, b = jax.random.normal(rng, (2,))
    return x + slope * a * _along_time(x, _centred_time(x.shape[0])) + offset * b

  return f


@augment
def clip(lo: float = 0.0, hi: float = 1.0):
  """Deterministic clip to [lo, hi], e.g. after noise."""
  lo = _check_number("clip", "lo", lo)
  hi = _check_number("clip", "hi", hi, lo)
  return lambda rng, x: jnp.clip(x, lo, hi)


def _check_video(op: str, x):
  if x.ndim != 4:
    raise ConfigError(f"{op} needs [T, H, W, C] videos per example; got shape {x.shape}. Apply it "
                      "to a video key (e.g. key='frames').")


@augment
def flip_video(p: float = 0.5, axis: str = "lr"):
  """Mirrors every frame of a video the same way (left-right or up-down) with probability p."""
  if axis not in ("lr", "ud"):
    raise ConfigError(f"flip_video(axis={axis!r}): axis must be 'lr' or 'ud'.")
  return _with_probability("flip_video", p, _check_video,
                           (lambda x: x[:, :, ::-1]) if axis == "lr" else (lambda x: x[:, ::-1]))


@augment
def reverse_time(p: float = 0.5):
  """Plays a video backwards with probability p (bouncing digits' dynamics are reversible)."""
  return _with_probability("reverse_time", p, _check_video, lambda x: x[::-1])


@augment
def time_crop(length: int):
  """`length` consecutive frames from a uniform start: a shorter clip of a longer video."""
  _check_int("time_crop", "length", length, 1)

  def f(rng, x):
    _check_video("time_crop", x)
    if length > x.shape[0]:
      raise ConfigError(f"time_crop({length}) needs videos of at least {length} frames; they "
                        f"have {x.shape[0]}.")
    start = jax.random.randint(rng, (), 0, x.shape[0] - length + 1)
    return jax.lax.dynamic_slice_in_dim(x, start, length, axis=0)

  return f


@augment
def stack_frames():
  """[T, H, W, C] -> [H, W, T*C]: frames as channels, for image backbones (a U-Net)."""

  def f(rng, x):
    del rng
    _check_video("stack_frames", x)
    return jnp.moveaxis(x, 0, 2).reshape(x.shape[1:3] + (-1,))

  return f


# Ops that draw nothing: two views stay equal through them.
DETERMINISTIC = ("clip", "detrend", "stack_frames")


class Augment:
  """The parsed chain; `augment(rng, batch)` is pure and jittable. Falsy (identity) when empty."""

  def __init__(self, spec: str):
    self.spec = spec
    self._ops = []  # (text, op, number of leading dims of op.key before the op)
    lead: dict[str, int] = {}  # Statically known leading dims per key; 1 (batch) unless set.
    for text, op in parse_calls(spec, AUGMENTS, "augmentation op"):
      n = lead.get(op.key, 1)
      self._ops.append((text, op, n))
      if isinstance(op, _Views):
        lead[op.key] = n + 1
      else:
        lead[op.out] = n

  def __bool__(self):
    return bool(self._ops)

  def views(self, key: str = "input") -> int:
    """How many views `views()` makes of `key` (1: none)."""
    return next((op.n for _, op, _ in self._ops if isinstance(op, _Views) and op.key == key), 1)

  def randomises_views(self, key: str = "input") -> bool:
    """Does a random op act on `key` after its views() (else every view is the same)?"""
    seen = False
    for text, op, _ in self._ops:
      if isinstance(op, _Views):
        seen = seen or op.key == key
      elif seen and op.key == key and op.out == key and text.split("(")[0].strip() \
          not in DETERMINISTIC:
        return True
    return False

  def __repr__(self):
    return f"Augment({self.spec!r})"

  def __call__(self, rng, batch: dict) -> dict:
    batch = dict(batch)
    for i, (text, op, lead) in enumerate(self._ops):
      try:
        x = batch[op.key]
      except KeyError:
        raise ConfigError(f"Augmentation op {text!r} needs batch key {op.key!r}; the batch has "
                          f"{sorted(batch)}. Fix its key= argument.") from None
      if x.ndim < lead:
        raise ConfigError(f"Augmentation op {text!r} expects {lead} leading dims on {op.key!r}; "
                          f"got shape {x.shape}.")
      if isinstance(op, _Views):
        batch[op.key] = jnp.repeat(jnp.expand_dims(x, lead), op.n, axis=lead)
        continue
      fn = op.fn
      for _ in range(lead):
        fn = jax.vmap(fn)
      keys = jax.random.split(jax.random.fold_in(rng, i), x.shape[:lead])
      batch[op.out] = fn(keys, jnp.asarray(x, jnp.float32))
    return batch


def parse(spec: str) -> Augment:
  """"op1|op2(...)" -> Augment; unknown ops or bad arguments raise ConfigError."""
  return Augment(spec)


# The option: `config.augment` runs inside the train step on the step's own key.
DEFAULTS = {
    # "op|op(args)", e.g. "random_crop(2)|gaussian_noise(0.1)"; "views(2)|..." gives two
    # views per example.
    "augment": "",
}


def check(config) -> None:
  parse(config.augment)


def setup(config, run):
  del run
  aug = parse(config.augment)
  if not aug:
    return None
  rng = jax.random.PRNGKey(config.seed)
  # The task is built for the batch it will see: e.g. [B, 2, ...] with two views.
  return Active(name="augment", batch=aug, model_spec=lambda spec: jax.eval_shape(aug, rng, spec))
