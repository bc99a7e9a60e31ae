"""Image data sets: image_folder on real MNIST digits written as PNG/JPEG, Fashion-MNIST and KMNIST
file layouts, scikit-learn's digits, and the resize op."""

import gzip
import os

import numpy as np
import pytest
from PIL import Image

from aigc_jax.data import ops, pipeline, sources
from aigc_jax.data.builders import mnist_idx
from aigc_jax.errors import ConfigError
from aigc_jax import config as config_lib

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
PER_CLASS = 30  # 20 PNG + 10 JPEG per class: 300 real digits
NUM_PNG = 20


def _data_config(tfds_dir, data_dir="", image=None, **kw):
  c = config_lib.get_config().data
  c.update(dict(tfds_dir=tfds_dir, data_dir=data_dir, **kw))
  c.image.update(image or {})
  return c


@pytest.fixture(scope="module")
def digits(data_dir):
  mnist = os.path.join(data_dir, "mnist")
  return (mnist_idx.read_idx(os.path.join(mnist, "t10k-images-idx3-ubyte.gz")),
          mnist_idx.read_idx(os.path.join(mnist, "t10k-labels-idx1-ubyte.gz")))


def _write_class_folders(root, images, labels, per_class, num_png):
  """Writes the first `per_class` digits of each class to root/<word>/; returns {png: word}."""
  pngs = {}
  for d, word in enumerate(WORDS):
    os.makedirs(root / word)
    for j, i in enumerate(np.flatnonzero(labels == d)[:per_class]):
      ext = "png" if j < num_png else "jpg"
      Image.fromarray(images[i]).save(root / word / f"{j:03d}.{ext}")
      if ext == "png":
        pngs[images[i][..., None].tobytes()] = word
  return pngs


@pytest.fixture(scope="module")
def raw(tmp_path_factory, digits):
  """A data dir: digits/<word>/ (PNG and JPEG), split/{train,validation,test}/<word>/."""
  root = tmp_path_factory.mktemp("raw")
  pngs = _write_class_folders(root / "digits", *digits, PER_CLASS, NUM_PNG)
  images, labels = digits[0][5000:], digits[1][5000:]  # other digits than above
  for split, n in (("train", 5), ("validation", 2), ("test", 3)):
    _write_class_folders(root / "split" / split, images, labels, n, n)
    images, labels = images[1000:], labels[1000:]
  (root / "digits" / "README.txt").write_text("skipped: not an image, and not a class")
  (root / "digits" / "seven" / "notes.txt").write_text("skipped: not an image")
  return str(root), pngs


@pytest.fixture(scope="module")
def image_tfds(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds_images"))  # folder-named configs: keep them private


def _both(c):
  return [pipeline.load_split(c, s) for s in ("train", "test")]


def test_image_folder_of_real_digits(raw, image_tfds):
  root, pngs = raw
  c = _data_config(image_tfds, root, name="image_folder/digits")
  train, test = _both(c)
  assert len(train) == 240 and len(test) == 60  # 80 / 20 of every class (stratified)
  names = sources.get_builder(c).info.features["label"].names
  assert names == sorted(WORDS)
  for split in (train, test):
    assert split.columns["image"].shape[1:] == (28, 28, 1)
    assert split.columns["image"].dtype == np.uint8
    assert np.bincount(split.columns["label"], minlength=10).tolist() == [len(split) // 10] * 10
  # PNG pixels round-trip exactly, under the label of the folder they were written to.
  found = [(pngs[x.tobytes()], names[y]) for s in (train, test)
           for x, y in zip(s.columns["image"], s.columns["label"]) if x.tobytes() in pngs]
  assert len(found) == len(pngs) == 10 * NUM_PNG
  assert all(folder == label for folder, label in found)


def test_image_folder_resize_and_channels(raw, image_tfds, digits):
  root, pngs = raw
  c = _data_config(image_tfds, root, image={"size": 14, "channels": 3}, name="image_folder/digits")
  train = pipeline.load_split(c, "train")
  assert sources.get_builder(c).builder_config.name.startswith("digits-")  # its own copy
  x = train.columns["image"]
  assert x.shape == (240, 14, 14, 3) and x.dtype == np.uint8
  np.testing.assert_array_equal(x[..., 0], x[..., 2])  # grey digits as RGB
  # Downsizing keeps the ink: mean brightness as in the 28x28 originals.
  assert abs(x.mean() - digits[0][:1000].mean()) < 5


def test_image_folder_split_folders(raw, image_tfds):
  c = _data_config(image_tfds, raw[0], name="image_folder/split")
  assert sorted(sources.get_builder(c).info.splits) == ["test", "train", "validation"]
  sizes = {s: len(pipeline.load_split(c, s)) for s in ("train", "validation", "test")}
  assert sizes == {"train": 50, "validation": 20, "test": 30}


def _png(path, pixels):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(pixels).save(path)


@pytest.mark.parametrize("name,bad,damage", [
    ("truncated", "b/cut.png", lambda raw: raw[:len(raw) // 2]),
    ("garbage", "b/noise.jpg", lambda raw: b"\xff\xd8\xff\xe0" + os.urandom(300)),
])
def test_corrupt_image_is_named(tmp_path, digits, name, bad, damage):
  folder = tmp_path / name
  for cls in ("a", "b"):
    for i in range(3):
      _png(folder / cls / f"{i}.png", digits[0][i])
  Image.fromarray(digits[0][9]).save(folder / bad)
  (folder / bad).write_bytes(damage((folder / bad).read_bytes()))
  c = _data_config(str(tmp_path / "tfds"), str(tmp_path), name=f"image_folder/{name}")
  with pytest.raises(ConfigError, match=f"Cannot decode image .*{bad}.*replace or delete"):
    pipeline.load_split(c, "train")


def test_folder_errors(tmp_path):
  (tmp_path / "empty").mkdir()
  (tmp_path / "no_images" / "a").mkdir(parents=True)
  (tmp_path / "no_images" / "a" / "x.txt").write_text("text")
  for i in range(3):
    _png(tmp_path / "mixed" / "a" / f"{i}.png", np.zeros((28, 28), np.uint8))
    _png(tmp_path / "mixed" / "b" / f"{i}.png", np.zeros((20, 20), np.uint8))
  _png(tmp_path / "only_test" / "test" / "a" / "0.png", np.zeros((28, 28), np.uint8))
  cases = {"nope": "does not exist", "empty": "no class sub-folders", "only_test": "no train/",
           "no_images": "hold no images", "mixed": "must share one size. Set data.image.size"}
  for folder, match in cases.items():
    c = _data_config(str(tmp_path / "tfds"), str(tmp_path), name=f"image_folder/{folder}")
    with pytest.raises(ConfigError, match=match):
      pipeline.load_split(c, "train")
  with pytest.raises(ConfigError, match="needs a folder"):
    pipeline.load_split(_data_config(str(tmp_path), str(tmp_path), name="image_folder"), "train")
  with pytest.raises(ConfigError, match="data.image.channels=2"):
    pipeline.load_split(_data_config(str(tmp_path), str(tmp_path), image={"channels": 2},
                                     name="image_folder/mixed"), "train")


def _write_idx(path, array):
  header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">i4").tobytes()
  opener = gzip.open if str(path).endswith(".gz") else open
  with opener(path, "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_idx_official_split(tmp_path, digits):
  images, labels = digits
  folder = tmp_path / "fashion_mnist"
  folder.mkdir()
  _write_idx(folder / "train-images-idx3-ubyte.gz", images[:600])
  _write_idx(folder / "train-labels-idx1-ubyte.gz", labels[:600])
  _write_idx(folder / "t10k-images-idx3-ubyte", images[600:700])  # uncompressed works too
  _write_idx(folder / "t10k-labels-idx1-ubyte", labels[600:700])
  c = _data_config(str(tmp_path / "tfds"), str(tmp_path), name="mnist_idx/fashion_mnist")
  train, test = _both(c)
  # The files' own test split; an eighth of their train split held out as validation.
  val = pipeline.load_split(c, "validation")
  assert len(train) == 525 and len(val) == 75 and len(test) == 100
  assert (sorted(train.columns["label"].tolist() + val.columns["label"].tolist())
          == sorted(labels[:600].tolist()))
  assert sorted(test.columns["label"].tolist()) == sorted(labels[600:700].tolist())
  names = sources.get_builder(c).info.features["label"].names
  assert names[0] == "T-shirt/top" and names[9] == "Ankle boot" and len(names) == 10


def test_kmnist_npz_official_split(tmp_path, digits):
  images, labels = digits
  folder = tmp_path / "kmnist"
  folder.mkdir()
  for split, sl in (("train", slice(0, 500)), ("test", slice(500, 580))):
    np.savez_compressed(folder / f"kmnist-{split}-imgs.npz", images[sl])
    np.savez_compressed(folder / f"kmnist-{split}-labels.npz", labels[sl])
  c = _data_config(str(tmp_path / "tfds"), str(tmp_path), name="mnist_idx/kmnist")
  train, test = _both(c)
  assert len(train) == 438 and len(pipeline.load_split(c, "validation")) == 62
  assert len(test) == 80 and train.columns["image"].shape == (438, 28, 28, 1)
  assert sources.get_builder(c).info.features["label"].names[:3] == ["o", "ki", "su"]


def test_mnist_layout_errors(tmp_path):
  (tmp_path / "kmnist").mkdir()
  c = _data_config(str(tmp_path / "tfds"), str(tmp_path), name="mnist_idx/kmnist")
  with pytest.raises(ConfigError, match=r"kmnist/t10k-images-idx3-ubyte.gz.*kmnist-\{train,test"):
    pipeline.load_split(c, "train")
  _write_idx(tmp_path / "kmnist" / "t10k-images-idx3-ubyte.gz", np.zeros((4, 28, 28)))
  _write_idx(tmp_path / "kmnist" / "t10k-labels-idx1-ubyte.gz", np.zeros(4))
  _write_idx(tmp_path / "kmnist" / "train-images-idx3-ubyte.gz", np.zeros((4, 28, 28)))
  with pytest.raises(ConfigError, match=r"Missing raw file.*train-labels-idx1-ubyte.gz"):
    pipeline.load_split(c, "train")  # train files come in pairs


def test_sklearn_digits(tfds_dir):
  train, test = _both(_data_config(tfds_dir, name="sklearn_digits"))
  assert len(train) == 1437 and len(test) == 360
  for split in (train, test):
    x = split.columns["image"]
    assert x.shape[1:] == (8, 8, 1) and x.dtype == np.uint8
    assert x.min() == 0 and x.max() == 16
    assert set(split.columns["label"].tolist()) == set(range(10))


def test_resize_op(digits):
  digit = digits[0][0]
  out = ops.parse("resize(14)")({"image": digit[..., None], "label": 7})
  assert out["image"].shape == (14, 14, 1) and out["image"].dtype == np.uint8 and out["label"] == 7
  want = np.asarray(Image.fromarray(digit).resize((14, 14), Image.Resampling.BILINEAR))
  assert np.abs(out["image"][..., 0].astype(int) - want).max() <= 1  # Pillow's own 8-bit resize
  up = ops.parse("resize((4, 6), method='nearest')")({"image": np.array([[0.5, 1.0]], np.float32)})
  assert up["image"].dtype == np.float32
  np.testing.assert_array_equal(up["image"], np.repeat([[0.5] * 3 + [1.0] * 3], 4, axis=0))
  for spec, match in (("resize(8, method='cubic')", "valid methods"),
                      ("resize(0)", "positive int or")):
    with pytest.raises(ConfigError, match=match):
      ops.parse(spec)
