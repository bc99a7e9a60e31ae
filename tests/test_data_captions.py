"""mnist_captions: captioned compositions of the carve's digits, held-out compositions, errors."""

import os
import re

import numpy as np
import pytest

from aigc_jax import config as config_lib
from aigc_jax.data import sources
from aigc_jax.data.builders import mnist_captions, mnist_idx
from aigc_jax.errors import ConfigError

# The grammar as the module's docstring states it, written out independently of its tables.
_NOUN = r"(?:an? (\w+)|the digit (\w+)|the number (\w+))"
_REL = (r"(left of|to the left of|on the left of|right of|to the right of|on the right of|"
        r"above|over|on top of|below|under|beneath)")
_PAIR = re.compile(rf"^(?:there is |here is |we see )?{_NOUN}(?: is)? {_REL} {_NOUN}$")
_SINGLE = re.compile(rf"^(?:just |here is |this is |we see )?{_NOUN}(?: alone| on its own)?$")
_WORDS = "zero one two three four five six seven eight nine".split()
_SIDE = {"left": (1, 0), "right": (1, 1), "above": (2, 0), "over": (2, 0), "top": (2, 0),
         "below": (2, 1), "under": (2, 1), "beneath": (2, 1)}


def _digit(groups) -> int:
  word = next(g for g in groups if g)
  return int(word) if word.isdigit() else _WORDS.index(word)


def read_caption(text: str) -> tuple[int, int, int]:
  """(layout, first, second) that a caption says, first = left or top; -1 for no second."""
  m = _PAIR.match(text)
  if m:
    a, b = _digit(m.groups()[:3]), _digit(m.groups()[4:])
    layout, slot = _SIDE[next(w for w in _SIDE if w in m.group(4).split())]
    return (layout, a, b) if slot == 0 else (layout, b, a)
  m = _SINGLE.match(text)
  assert m, f"caption outside the grammar: {text!r}"
  return 0, _digit(m.groups()), -1


def _config(tfds_dir, data_dir, **captions):
  c = config_lib.get_config().data
  c.update(name="mnist_captions/mnist", tfds_dir=tfds_dir, data_dir=data_dir)
  c.captions.update(dict(train_size=600, eval_size=300, **captions))
  return c


@pytest.fixture(scope="module")
def built(tmp_path_factory, data_dir):
  c = _config(str(tmp_path_factory.mktemp("tfds_captions")), data_dir, jitter=0)
  builder = sources.get_builder(c)
  return builder, {s: [r for r in sources.get_source(builder, s)] for s in builder.info.splits}


def _text(r, key="caption") -> str:
  return r[key].decode() if isinstance(r[key], bytes) else r[key]


def test_splits_and_captions_say_what_the_image_holds(built):
  _, splits = built
  sizes = {s: len(rs) for s, rs in splits.items()}
  assert sizes == {"train": 600, "validation": 300, "test": 300, "validation_novel": 300,
                   "test_novel": 300, "train_digits": 7000, "validation_digits": 1000,
                   "test_digits": 2000}
  held = {(1, 3, 8), (1, 8, 3), (2, 3, 8), (2, 8, 3)} | {(2, a, 7) for a in range(10)}
  swapped = 0
  for split, records in splits.items():
    for r in records:
      layout, first, second = read_caption(_text(r))
      assert (layout, first, second) == (r["layout"], *r["digits"]), _text(r)
      assert r["label"] == first
      if split.endswith("_novel"):
        assert (layout, first, second) in held
      else:
        assert (layout, first, second) not in held
      # The hard negative: a seen composition the image is not; the pair swapped where it can.
      neg = read_caption(_text(r, "negative"))
      assert neg != (layout, first, second) and neg not in held and neg[0] == layout, r
      if layout == 0:
        assert neg[1] != first
      elif first != second and (layout, second, first) not in held:
        assert neg == (layout, second, first)
        swapped += 1
      else:  # one digit changed, the other kept in its place
        assert neg[1] == first or neg[2] == second
  assert swapped > 1000
  pairs = [r for r in splits["train"] if r["layout"]]
  assert 0.7 < len(pairs) / 600 < 0.8  # pair_fraction 0.75
  assert len({_text(r) for r in pairs}) > 0.9 * len(pairs)  # templates and synonyms vary


def test_digits_come_from_their_own_split_of_the_carve(built, data_dir):
  """With jitter 0 every slot holds one digit of the same carve split, unchanged."""
  _, splits = built
  found = mnist_idx.raw_files(data_dir, mnist_idx.Builder.BUILDER_CONFIGS[0])
  pools = {}
  for split, (images, labels, idx) in mnist_idx.carve(found).items():
    idx = np.arange(len(images)) if idx is None else idx
    pools[split] = {images[i].tobytes(): int(labels[i]) for i in idx}
  assert not set(pools["train"]) & set(pools["test"])
  for split in ("train", "test", "test_novel"):
    for r in splits[split][:100]:
      for box, digit in zip(mnist_captions.slot_boxes(int(r["layout"]), 56), r["digits"]):
        y0, y1, x0, x1 = box
        cy, cx = (y0 + y1) // 2 - 14, (x0 + x1) // 2 - 14
        crop = r["image"][cy:cy + 28, cx:cx + 28, 0]
        assert pools[split.split("_")[0]].get(crop.tobytes()) == digit
  # test_digits: every test digit once, centred (tfds stores records in its own order).
  centred = sorted((r["image"][14:42, 14:42, 0].tobytes(), int(r["label"]))
                   for r in splits["test_digits"])
  assert centred == sorted(pools["test"].items())


def test_jitter_moves_digits_within_the_canvas(tmp_path, data_dir):
  rng = np.random.default_rng(0)
  digit = np.full((28, 28), 9, np.uint8)
  seen = set()
  for _ in range(50):
    img = mnist_captions.compose([digit, digit], 1, 56, 3, rng)
    ys, xs = np.nonzero(img)
    assert img.shape == (56, 56) and img.sum() > 0
    seen.add((ys.min(), xs.min()))
  assert len(seen) > 5


@pytest.mark.parametrize("spec, match", [
    ("3-8", "not a composition"),
    ("3&12", "not a composition"),
    ("7 beside", "not a composition"),
    (",".join(f"{d} {s}" for d in range(10) for s in ("left", "above")), "no training pair"),
])
def test_bad_held_out_specs(spec, match):
  c = config_lib.get_config().data
  c.captions.held_out = spec
  with pytest.raises(ConfigError, match=match):
    mnist_captions.make_config("mnist", c)


def test_other_bad_options():
  c = config_lib.get_config().data
  with pytest.raises(ConfigError, match="mnist, fashion_mnist or kmnist"):
    mnist_captions.make_config("cifar10", c)
  c.captions.canvas = 40
  with pytest.raises(ConfigError, match="cannot hold two"):
    mnist_captions.make_config("mnist", c)


def test_held_out_parsing():
  held = mnist_captions.parse_held_out("3&8, 7 below")
  assert len(held) == 4 + 10  # 3/8 in either place, both layouts; every x above 7 (7 over 7 once)
  assert (2, 7, 7) in held and (2, 7, 1) not in held and (1, 1, 7) not in held
  assert mnist_captions.parse_held_out("") == set()
  assert len(mnist_captions.seen_compositions("3&8,7 below")) == 200 - 14


def test_captions_tokenised_beside_their_images(built, data_dir):
  from aigc_jax.data import pipeline, tokens
  builder, splits = built
  c = _config(os.path.dirname(os.path.dirname(builder.data_dir)), data_dir, jitter=0)
  c.update(tokenizer="char", packing="examples", text_key="caption,negative",
           tokens_key="caption,hard", seq_len=64, truncate=False, preprocess="value_range(0, 1)")
  split = pipeline.load_split(c, "test")
  cols = split.columns
  assert cols["image"].shape == (300, 56, 56, 1) and cols["image"].dtype == np.float32
  assert cols["caption"].shape == (300, 64) and cols["caption"].dtype == np.int32
  assert cols["hard"].shape == (300, 64) and "negative" not in cols
  tok = tokens.get_tokenizer(c)
  records = splits["test"]  # the same stored order
  for i in (0, 7, 299):
    ids = cols["caption"][i]
    assert tok.decode(ids[ids >= 0]) == _text(records[i])
    ids = cols["hard"][i]
    assert tok.decode(ids[ids >= 0]) == _text(records[i], "negative")
    np.testing.assert_allclose(cols["image"][i], records[i]["image"] / 255.0, atol=1e-6)
    assert cols["digits"][i].tolist() == records[i]["digits"].tolist()
  c.tokens_key = "caption"
  with pytest.raises(ConfigError, match="must name as many features each"):
    pipeline.load_split(c, "test")
  c.update(text_key="caption", seq_len=12)
  with pytest.raises(ConfigError, match="longer than data.seq_len=12"):
    pipeline.load_split(c, "test")
