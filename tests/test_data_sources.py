import gzip
import os
import shutil

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from aigc_jax.data import pipeline, sources
from aigc_jax.data.builders import mnist_idx
from aigc_jax.errors import ConfigError
from aigc_jax import config as config_lib


def _data_config(tfds_dir, data_dir="", **kw):
  c = config_lib.get_config().data
  c.update(dict(tfds_dir=tfds_dir, data_dir=data_dir, **kw))
  return c


def test_read_idx_real_file(data_dir):
  images = mnist_idx.read_idx(os.path.join(data_dir, "mnist", "t10k-images-idx3-ubyte.gz"))
  labels = mnist_idx.read_idx(os.path.join(data_dir, "mnist", "t10k-labels-idx1-ubyte.gz"))
  assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
  assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))
  assert labels[:5].tolist() == [7, 2, 1, 0, 4]  # the first digits of the official test file


@pytest.mark.parametrize("damage,match", [
    (lambda raw: raw[:-100], "header says shape"),
    (lambda raw: b"\x01\x02" + raw[2:], "bad magic"),
])
def test_corrupt_idx_is_a_clear_error(data_dir, tmp_path, damage, match):
  with gzip.open(os.path.join(data_dir, "mnist", "t10k-labels-idx1-ubyte.gz")) as f:
    raw = f.read()
  path = tmp_path / "bad-idx1-ubyte.gz"
  with gzip.open(path, "wb") as f:
    f.write(damage(raw))
  with pytest.raises(ConfigError, match=f"Corrupt IDX file .*bad-idx1-ubyte.gz.*{match}"):
    mnist_idx.read_idx(str(path))


def test_truncated_gzip_is_a_clear_error(data_dir, tmp_path):
  src = os.path.join(data_dir, "mnist", "t10k-images-idx3-ubyte.gz")
  path = tmp_path / "t10k-images-idx3-ubyte.gz"
  path.write_bytes(open(src, "rb").read()[:50000])
  with pytest.raises(ConfigError, match="cannot decompress"):
    mnist_idx.read_idx(str(path))


def test_mnist_idx_carve_out(data_dir, tfds_dir):
  c = _data_config(tfds_dir, data_dir)
  splits = {s: pipeline.load_split(c, s) for s in ("train", "validation", "test")}
  assert {s: len(v) for s, v in splits.items()} == {"train": 7000, "validation": 1000, "test": 2000}
  assert splits["train"].columns["image"].shape == (7000, 28, 28, 1)
  # The three parts of the one real split, each image in exactly one of them.
  raw = mnist_idx.read_idx(os.path.join(data_dir, "mnist", "t10k-images-idx3-ubyte.gz"))
  every = sorted(x.tobytes() for s in splits.values() for x in s.columns["image"])
  assert every == sorted(x.tobytes() for x in raw[..., None])
  # The test split is still the 2,000 images that version 1.1's 8,000 / 2,000 carve held out.
  held_out = np.random.default_rng(0).permutation(10000)[8000:]
  assert (sorted(x.tobytes() for x in splits["test"].columns["image"])
          == sorted(x.tobytes() for x in raw[held_out][..., None]))
  for s in ("validation", "test"):
    counts = np.bincount(splits[s].columns["label"], minlength=10)
    assert counts.min() > len(splits[s]) // 20  # every class is held out


def test_mnist1d_validation_is_carved_from_train(tfds_dir):
  from mnist1d.data import get_dataset_args, make_dataset  # pylint: disable=import-outside-toplevel
  c = _data_config(tfds_dir, name="mnist1d")
  splits = {s: pipeline.load_split(c, s) for s in ("train", "validation", "test")}
  assert {s: len(v) for s, v in splits.items()} == {"train": 3500, "validation": 500, "test": 1000}
  canonical = make_dataset(get_dataset_args())
  rows = lambda xs: sorted(np.asarray(x, np.float32).tobytes() for x in xs)
  assert rows(np.concatenate([splits["train"].columns["x"], splits["validation"].columns["x"]])
              ) == rows(canonical["x"])
  assert rows(splits["test"].columns["x"]) == rows(canonical["x_test"])


def test_missing_data_dir_names_the_variable(tmp_path, monkeypatch):
  monkeypatch.delenv(sources.DATA_ENV, raising=False)
  c = _data_config(str(tmp_path / "tfds"))
  with pytest.raises(ConfigError, match="AIGC_JAX_DATA"):
    pipeline.load_split(c, "train")
  c.data_dir = str(tmp_path / "nope")
  with pytest.raises(ConfigError, match="does not exist"):
    pipeline.load_split(c, "train")


def test_missing_files_name_the_layout(tmp_path):
  (tmp_path / "mnist").mkdir()
  c = _data_config(str(tmp_path / "tfds"), str(tmp_path))
  with pytest.raises(ConfigError, match=r"Missing raw file.*mnist/t10k-images-idx3-ubyte.gz"):
    pipeline.load_split(c, "train")


def test_mnist1d_generated_equals_the_published_pickle(data_dir, tfds_dir):
  if not os.path.exists(os.path.join(data_dir, "mnist1d", "mnist1d_data.pkl")):
    pytest.skip("no mnist1d pickle")
  gen = pipeline.load_split(_data_config(tfds_dir, name="mnist1d"), "test")
  pkl = pipeline.load_split(_data_config(tfds_dir, data_dir, name="mnist1d/pickle"), "test")
  assert len(gen) == 1000 and gen.columns["x"].shape == (1000, 40)
  order = lambda s: np.lexsort(s.columns["x"].T)  # tfds stores records in hashed order
  np.testing.assert_allclose(gen.columns["x"][order(gen)], pkl.columns["x"][order(pkl)],
                             atol=1e-6)
  np.testing.assert_array_equal(gen.columns["label"][order(gen)], pkl.columns["label"][order(pkl)])


def test_catalog_names_go_to_tfds(tmp_path):
  c = _data_config(str(tmp_path), name="fashion_mnist",
                   preprocess="value_range(0, 1)|rename(image='input')")
  with tfds.testing.mock_data(num_examples=24):
    split = pipeline.load_split(c, "train")
  assert len(split) == 24
  assert split.columns["input"].shape == (24, 28, 28, 1)
  assert 0.0 <= split.columns["input"].min() and split.columns["input"].max() <= 1.0


def test_unknown_data_set(tmp_path):
  with pytest.raises(ConfigError,
                     match=r"Unknown data set 'mnist_idxx'.*mnist1d, mnist_captions, mnist_idx"):
    pipeline.load_split(_data_config(str(tmp_path), name="mnist_idxx"), "train")
