"""Moving MNIST (Srivastava et al. 2015) made from `data.name`'s digits when data.video.frames > 0.

A sequence is `digits` digits moving in a `frame_size` square for `frames` frames: each digit
starts at a uniform position, moves in a uniform direction at a speed uniform in `speed`
(fractions of the free travel `frame_size - 28` per frame; (0.1, 0.1), the widely used generator's
fixed 3.6 pixels at 64x64, is what OpenSTL trains on and the catalog's test file holds), and bounces
elastically off the borders; overlapping digits combine by their maximum. Positions are the
unfolded straight path folded into [0, 1] (exact reflection, no clamping), rounded to pixels.

Sequence i of a split is a pure function of (seed, split, i): the training split is endless
(every step draws new sequences, so training never repeats one and resuming needs only the
step), drawing digits from the digit set's training split; the validation and test splits are
frozen sets of `eval_sequences` sequences from that set's validation and test digits, held out
from training. Examples: `frames` [frames, size, size, 1] uint8, then `data.preprocess`.

`python -m aigc_jax.tools.video_preview --out=DIR` draws a split's first sequences to look at.
"""

import dataclasses
import hashlib
import re
import sys

import numpy as np

from aigc_jax.data import ops, sources
from aigc_jax.errors import ConfigError

DIGIT = 28  # MNIST's digit size
GENERATOR_VERSION = 1  # bump when the sequences a (seed, split, index) gives change

DEFAULTS = {
    # Frames per sequence (given + predicted); > 0 turns data.name, a set of 28x28 digits such as
    # mnist_idx, into Moving MNIST; 0: the data set is read as it is (e.g. the catalog's videos).
    "frames": 0,
    "digits": 2,  # digits per sequence
    "frame_size": 64,
    "speed": (0.1, 0.1),  # (low, high) per frame, as a fraction of the travel frame_size - 28
    "seed": 0,  # the training sequences' seed
    "eval_sequences": 10_000,  # the frozen validation and test sets' size
    "eval_seed": 0,  # their seed
    "key": "frames",
}


def validate(vc) -> None:
  if vc.frames <= 0:
    return
  if vc.frame_size < DIGIT:
    raise ConfigError(f"data.video.frame_size={vc.frame_size} is smaller than a digit ({DIGIT} "
                      f"pixels); use a frame of at least {DIGIT} (Moving MNIST: 64).")
  if vc.digits < 1 or vc.eval_sequences < 1:
    raise ConfigError(f"data.video.digits={vc.digits} and eval_sequences={vc.eval_sequences} "
                      "must be >= 1.")
  lo, hi = tuple(vc.speed)
  if not 0 <= lo <= hi:
    raise ConfigError(f"data.video.speed={tuple(vc.speed)} must be (low, high) with "
                      "0 <= low <= high.")


def fold(u: np.ndarray) -> np.ndarray:
  """A straight path in unfolded coordinates -> positions in [0, 1] bouncing off 0 and 1."""
  return 1.0 - np.abs(np.mod(u, 2.0) - 1.0)


def trajectories(rng: np.random.Generator, num_digits: int, num_frames: int,
                 speed=(0.1, 0.1)) -> np.ndarray:
  """[digits, frames, 2] (y, x) positions in [0, 1] of the digits' top-left corners."""
  start = rng.uniform(size=(num_digits, 2))
  theta = rng.uniform(0.0, 2 * np.pi, num_digits)
  magnitude = rng.uniform(speed[0], speed[1], num_digits)
  velocity = magnitude[:, None] * np.stack([np.sin(theta), np.cos(theta)], -1)
  t = np.arange(num_frames, dtype=np.float64)
  return fold(start[:, None, :] + velocity[:, None, :] * t[None, :, None])


def render(digits: np.ndarray, positions: np.ndarray, frame_size: int) -> np.ndarray:
  """digits [D, h, w] uint8 at positions [D, T, 2] -> [T, size, size, 1] uint8 (max over digits)."""
  num_frames = positions.shape[1]
  h, w = digits.shape[1:3]
  corners = np.rint(positions * np.array([frame_size - h, frame_size - w])).astype(np.int64)
  out = np.zeros((num_frames, frame_size, frame_size), np.uint8)
  for d, digit in enumerate(digits):
    for t in range(num_frames):
      y, x = corners[d, t]
      np.maximum(out[t, y:y + h, x:x + w], digit, out=out[t, y:y + h, x:x + w])
  return out[..., None]


def _stream(seed: int, split: str) -> int:
  """A 64-bit stream id per (seed, split): train and test never share random numbers."""
  digest = hashlib.sha256(f"moving_mnist/{GENERATOR_VERSION}/{seed}/{split}".encode()).digest()
  return int.from_bytes(digest[:8], "little")


@dataclasses.dataclass
class MovingDigits:
  """A split of generated sequences (the Split protocol of aigc_jax/data/splits.py)."""
  digits: np.ndarray  # [N, 28, 28] uint8, the split's own digits
  length: int  # sys.maxsize: endless (training)
  seed: int
  split: str
  num_digits: int = 2
  frame_size: int = 64
  num_frames: int = 20
  speed: tuple = (0.1, 0.1)
  key: str = "frames"
  fn: object = None  # data.preprocess, applied per sequence
  start: int = 0  # sequence index of example 0 (a slice such as test[5000:])

  @property
  def endless(self) -> bool:
    return self.length == sys.maxsize

  def __len__(self) -> int:
    return self.length

  def sequence(self, index: int) -> dict:
    """Example `index` before preprocessing: frames and the digits' data-set indices."""
    rng = np.random.default_rng([_stream(self.seed, self.split), self.start + int(index)])
    which = rng.integers(0, len(self.digits), self.num_digits)
    positions = trajectories(rng, self.num_digits, self.num_frames, self.speed)
    return {self.key: render(self.digits[which], positions, self.frame_size),
            "digit_index": which.astype(np.int32)}

  def _example(self, index: int) -> dict:
    ex = self.sequence(index)
    return self.fn(ex) if self.fn else ex

  def example_spec(self) -> dict:
    ex = self._example(0)
    return {k: (np.shape(v), np.asarray(v).dtype) for k, v in ex.items()}

  def load(self, indices) -> dict:
    rows = [self._example(i) for i in np.asarray(indices).reshape(-1)]
    return {k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]}


_SLICE = re.compile(r"^(\w+)(?:\[(\d*):(\d*)\])?$")


def _parse_split(split: str, size: int) -> tuple[str, int, int]:
  """"test[:1000]" -> ("test", 0, 1000); only plain sequence-index slices."""
  m = _SLICE.match(split.replace(" ", ""))
  if not m:
    raise ConfigError(f"Split {split!r} of generated video: use a name, optionally sliced by "
                      "sequence index, e.g. 'test' or 'test[:1000]'.")
  name, lo, hi = m.group(1), int(m.group(2) or 0), int(m.group(3) or size)
  if not 0 <= lo < hi <= size:
    raise ConfigError(f"Split {split!r}: the slice must lie in [0, {size}] and be non-empty.")
  return name, lo, hi


def load_split(data_config, split: str) -> MovingDigits:
  vc = data_config.video
  validate(vc)
  train = split == data_config.train_split
  name, lo, hi = _parse_split(split, vc.eval_sequences)
  builder = sources.get_builder(data_config)
  source = sources.get_source(builder, name)
  digits = np.stack([np.asarray(source[i]["image"]) for i in range(len(source))])
  if digits.shape[1:3] != (DIGIT, DIGIT):
    raise ConfigError(f"data.name={data_config.name!r} has {digits.shape[1:]} images; Moving "
                      f"MNIST (data.video.frames > 0) needs {DIGIT}x{DIGIT} digits (mnist_idx).")
  digits = digits.reshape(len(digits), DIGIT, DIGIT, -1)[..., 0]
  if digits.dtype != np.uint8:
    raise ConfigError(f"data.name={data_config.name!r} has {digits.dtype} images; Moving MNIST "
                      "(data.video.frames > 0) needs uint8 28x28 digits (e.g. mnist_idx).")
  return MovingDigits(
      digits=digits, length=sys.maxsize if train else hi - lo, start=0 if train else lo,
      seed=vc.seed if train else vc.eval_seed, split=name, num_digits=vc.digits,
      frame_size=vc.frame_size, num_frames=vc.frames, speed=tuple(vc.speed), key=vc.key,
      fn=ops.parse(data_config.preprocess))
