"""Captioned images composed from the MNIST carve: `data.name = "mnist_captions/<config>"`.

One or two 28x28 digits of an `mnist_idx` config (mnist, fashion_mnist, kmnist) on a square
canvas, side by side or one above the other, with a caption drawn from a small grammar: noun
phrases ("a 3", "the digit three", "the number 3"), relations with synonyms ("above", "on top
of", "over") and several templates ("there is ...", "we see ..."), spoken from either digit ("a 3
above a 5" = "a 5 below a 3"). Digits come
from the carve's split of the same name, so no digit image is on both sides.

A composition is (layout, first digit, second digit), first = left or top. `held_out` names the
compositions never shown in training: `A&B` (every image of digits A and B, either place) and
`A above|below|left|right` (A on that side of the other digit: `7 below` holds out every "7 below
x" and "x above 7"). Splits:
- train, validation, test: single digits and seen compositions;
- validation_novel, test_novel: held-out compositions only (from held-out digits);
- train_digits, validation_digits, test_digits: each digit of the split once, alone at the
  centre, captioned: zero-shot classification and the linear probe read these.
Features: image (uint8), caption (text), digits ([first, second], -1 where absent), layout
(single, horizontal, vertical), label (the first digit) and negative: a caption the image
contradicts only in where its digits stand (the pair swapped), the hard negative that teaches a
contrastive text tower word order (see `negative`). Options come from `data.captions`.
"""

import dataclasses
import itertools
import re

import numpy as np
import tensorflow_datasets as tfds

from aigc_jax.data.builders import FolderConfig, folder_config, mnist_idx
from aigc_jax.errors import ConfigError

LAYOUTS = ("single", "horizontal", "vertical")
SIDES = {"left": (1, 0), "right": (1, 1), "above": (2, 0), "below": (2, 1)}  # (layout, slot)
RELATIONS = {  # (layout, the mentioned digit's slot) -> phrases
    (1, 0): ("left of", "to the left of", "on the left of"),
    (1, 1): ("right of", "to the right of", "on the right of"),
    (2, 0): ("above", "over", "on top of"),
    (2, 1): ("below", "under", "beneath"),
}
PAIR_TEMPLATES = ("{a} {rel} {b}", "{a} is {rel} {b}", "there is {a} {rel} {b}",
                  "here is {a} {rel} {b}", "we see {a} {rel} {b}")
SINGLE_TEMPLATES = ("{a}", "{a} alone", "just {a}", "{a} on its own", "here is {a}",
                    "this is {a}", "we see {a}")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGIT = 28
_ITEM = re.compile(r"^\s*(\d)\s*(?:&\s*(\d)|\s(left|right|above|below))\s*$")


@dataclasses.dataclass
class CaptionOptions:
  """`config.data.captions`: how the captioned canvas images are composed."""
  canvas: int = 56
  pair_fraction: float = 0.75  # of train/validation/test images; the rest are single digits
  train_size: int = 20_000
  eval_size: int = 2_000  # each of validation, test, validation_novel, test_novel
  held_out: str = "3&8,7 below"
  jitter: int = 3  # pixels a digit may move from its slot's centre, each axis
  seed: int = 0


SECTION = ("captions", CaptionOptions)


def parse_held_out(spec: str, num_classes: int = 10) -> set[tuple[int, int, int]]:
  """The held-out compositions {(layout, first, second)} named by `spec`."""
  held = set()
  for item in filter(str.strip, spec.split(",")):
    m = _ITEM.match(item)
    if not m or any(int(d) >= num_classes for d in m.groups()[:2] if d):
      raise ConfigError(
          f"data.captions.held_out item {item!r} is not a composition: write 'A&B' (digits A "
          "and B together, either place) or 'A left|right|above|below' (A on that side), "
          f"digits 0-{num_classes - 1}, items separated by commas, e.g. '3&8,7 below'.")
    a, b, side = int(m.group(1)), m.group(2), m.group(3)
    for layout, first, second in all_compositions(num_classes):
      if b is not None:
        hit = {first, second} == {a, int(b)}
      else:
        want_layout, slot = SIDES[side]
        hit = layout == want_layout and (first, second)[slot] == a
      if hit:
        held.add((layout, first, second))
  return held


def all_compositions(num_classes: int = 10) -> list[tuple[int, int, int]]:
  return [(layout, a, b) for layout in (1, 2)
          for a, b in itertools.product(range(num_classes), repeat=2)]


def seen_compositions(spec: str, num_classes: int = 10) -> list[tuple[int, int, int]]:
  held = parse_held_out(spec, num_classes)
  seen = [c for c in all_compositions(num_classes) if c not in held]
  if not seen:
    raise ConfigError(f"data.captions.held_out={spec!r} holds out every composition, so no "
                      "training pair is left; hold out fewer (e.g. '3&8,7 below').")
  return seen


def make_config(folder: str, data_config) -> FolderConfig:
  if folder not in [c.name for c in mnist_idx.Builder.BUILDER_CONFIGS]:
    raise ConfigError(f"mnist_captions composes an mnist_idx config's images: data.name="
                      f"'mnist_captions/<mnist, fashion_mnist or kmnist>', got {folder!r}.")
  opts = CaptionOptions(**dict(data_config.captions))
  if opts.canvas < 2 * DIGIT:
    raise ConfigError(f"data.captions.canvas={opts.canvas} cannot hold two {DIGIT}x{DIGIT} "
                      f"digits side by side; use >= {2 * DIGIT}.")
  if not 0.0 <= opts.pair_fraction <= 1.0:
    raise ConfigError(f"data.captions.pair_fraction={opts.pair_fraction} must be in [0, 1].")
  if opts.train_size < 1 or opts.eval_size < 1 or opts.jitter < 0:
    raise ConfigError("data.captions.train_size and eval_size must be >= 1 and jitter >= 0.")
  seen_compositions(opts.held_out)
  return folder_config(folder, opts, f"Captioned compositions of mnist_idx/{folder} digits.")


def check_raw(raw_dir: str, config: FolderConfig) -> None:
  mnist_idx.check_raw(raw_dir, _idx_config(config.folder))


def _idx_config(name: str):
  return next(c for c in mnist_idx.Builder.BUILDER_CONFIGS if c.name == name)


def _a(word: str) -> str:
  return ("an " if word[0] in "aeiou8" else "a ") + word


def mentions(label: int, names: list[str]) -> list[str]:
  """Noun phrases naming a class: digits by numeral and by word, other classes by name."""
  if names == [str(i) for i in range(10)]:
    return [p for n in (str(label), NUMBER_WORDS[label])
            for p in (_a(n), f"the digit {n}", f"the number {n}")]
  name = names[label].lower()
  return [_a(name), f"the {name}"]


def caption(layout: int, first: int, second: int, names: list[str], rng) -> str:
  pick = lambda xs: xs[rng.integers(len(xs))]
  if layout == 0:
    return pick(SINGLE_TEMPLATES).format(a=pick(mentions(first, names)))
  slot = int(rng.integers(2))  # speak from either digit: "3 above 5" or "5 below 3"
  a, b = (first, second) if slot == 0 else (second, first)
  return pick(PAIR_TEMPLATES).format(a=pick(mentions(a, names)), rel=pick(RELATIONS[layout, slot]),
                                     b=pick(mentions(b, names)))


def negative(layout: int, first: int, second: int, seen: set, names: list[str], rng) -> str:
  """A caption of a seen composition the image is not: its two digits swapped; where that is no
  different (a pair of equal digits) or held out, one digit changed; for a single digit, another
  digit. Never a held-out composition, so those stay unseen in training even as text."""
  if layout == 0:
    other = (first + 1 + int(rng.integers(len(names) - 1))) % len(names)
    return caption(0, other, other, names, rng)
  if first != second and (layout, second, first) in seen:
    return caption(layout, second, first, names, rng)
  options = [c for c in sorted(seen) if c[0] == layout and c != (layout, first, second)
             and (c[1] == first or c[2] == second)]
  return caption(*options[int(rng.integers(len(options)))], names, rng)


def compose(digits: list[np.ndarray], layout: int, canvas: int, jitter: int, rng) -> np.ndarray:
  """The digits (28x28 uint8) placed in their slots, each moved by up to `jitter` pixels but
  kept whole on the canvas; overlapping margins take the brighter pixel."""
  out = np.zeros((canvas, canvas), np.uint8)
  centres = {0: [(canvas / 2, canvas / 2)],
             1: [(canvas / 2, canvas / 4), (canvas / 2, 3 * canvas / 4)],
             2: [(canvas / 4, canvas / 2), (3 * canvas / 4, canvas / 2)]}[layout]
  for img, (cy, cx) in zip(digits, centres):
    dy, dx = rng.integers(-jitter, jitter + 1, size=2) if jitter else (0, 0)
    y = int(np.clip(round(cy - DIGIT / 2) + dy, 0, canvas - DIGIT))
    x = int(np.clip(round(cx - DIGIT / 2) + dx, 0, canvas - DIGIT))
    region = out[y:y + DIGIT, x:x + DIGIT]
    np.maximum(region, img, out=region)
  return out


def slot_boxes(layout: int, canvas: int) -> list[tuple[int, int, int, int]]:
  """(y0, y1, x0, x1) of each slot's half of the canvas (the whole canvas for one digit)."""
  h = canvas // 2
  return {0: [(0, canvas, 0, canvas)],
          1: [(0, canvas, 0, h), (0, canvas, h, canvas)],
          2: [(0, h, 0, canvas), (h, canvas, 0, canvas)]}[layout]


class Builder(tfds.core.GeneratorBasedBuilder):
  """Images of one or two digits with captions; configs are made per mnist_idx config."""

  name = "mnist_captions"
  VERSION = tfds.core.Version("1.2.0")
  RELEASE_NOTES = {
      "1.2.0": "A hard-negative caption (`negative`: the digits swapped) beside each caption; "
               "every other feature as in 1.1.0.",
      "1.1.0": "Digits kept whole on the canvas; numeral and word in every noun phrase, more "
               "templates ('here is', 'we see', 'this is').",
      "1.0.0": "One or two carve digits on a canvas with grammar-made captions.",
  }
  MANUAL_DOWNLOAD_INSTRUCTIONS = mnist_idx.Builder.MANUAL_DOWNLOAD_INSTRUCTIONS

  def _info(self):
    c = self.builder_config.options.canvas
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(c, c, 1), dtype=np.uint8, encoding="none"),
            "caption": tfds.features.Text(),
            "negative": tfds.features.Text(),
            "digits": tfds.features.Tensor(shape=(2,), dtype=np.int32),
            "layout": tfds.features.ClassLabel(names=list(LAYOUTS)),
            "label": tfds.features.ClassLabel(names=_idx_config(self.builder_config.folder).names),
        }),
        supervised_keys=("image", "caption"))

  def _split_generators(self, dl_manager):
    idx = _idx_config(self.builder_config.folder)
    pools = mnist_idx.carve(mnist_idx.raw_files(str(dl_manager.manual_dir), idx))
    opts = self.builder_config.options
    seen = seen_compositions(opts.held_out, len(idx.names))
    novel = sorted(parse_held_out(opts.held_out, len(idx.names)))
    out = {}
    for i, (split, (images, labels, indices)) in enumerate(pools.items()):
      indices = np.arange(len(images)) if indices is None else indices
      pool = (images[indices], labels[indices])
      n = opts.train_size if split == "train" else opts.eval_size
      out[split] = self._generate_examples(pool, seen, n, opts.pair_fraction, (i, 0), idx.names)
      out[f"{split}_digits"] = self._generate_examples(pool, [], len(indices), 0.0, (i, 1),
                                                       idx.names, every_digit=True)
      if split != "train" and novel:
        out[f"{split}_novel"] = self._generate_examples(pool, novel, n, 1.0, (i, 2), idx.names)
    return out

  def _generate_examples(self, pool, compositions, n, pair_fraction, stream, names,
                         every_digit=False):
    images, labels = pool
    opts = self.builder_config.options
    rng = np.random.default_rng([opts.seed, *stream])
    # Its own stream, so the other features are those of version 1.1.0.
    neg_rng = np.random.default_rng([opts.seed, *stream, 1])
    seen = set(seen_compositions(opts.held_out, len(names)))
    by_class = [np.flatnonzero(labels == k) for k in range(len(names))]
    for i in range(n):
      if every_digit:
        layout, chosen = 0, [i]
      elif rng.random() < pair_fraction:
        layout, first, second = compositions[rng.integers(len(compositions))]
        chosen = [rng.choice(by_class[first]), rng.choice(by_class[second])]
      else:
        layout, chosen = 0, [rng.integers(len(labels))]
      digits = [int(labels[j]) for j in chosen]
      yield i, {
          "image": compose([images[j] for j in chosen], layout, opts.canvas,
                           0 if every_digit else opts.jitter, rng)[..., None],
          "caption": caption(layout, digits[0], digits[-1], names, rng),
          "negative": negative(layout, digits[0], digits[-1], seen, names, neg_rng),
          "digits": np.array(digits + [-1] * (2 - len(digits)), np.int32),
          "layout": layout,
          "label": digits[0],
      }
