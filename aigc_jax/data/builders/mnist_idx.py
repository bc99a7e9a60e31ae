"""MNIST-format IDX files from a local folder, with a seeded train/test carve-out.

Offline only the 10k MNIST test split exists, so the builder carves it into 8,000 training and
2,000 held-out images with a fixed permutation (seed 0); every run and every machine sees the same
split. Raw layout: `$AIGC_JAX_DATA/mnist/t10k-{images-idx3,labels-idx1}-ubyte.gz`.
"""

import gzip
import os
import zlib

import numpy as np
import tensorflow_datasets as tfds

from aigc_jax.errors import ConfigError

CARVE_SEED = 0
NUM_TRAIN = 8000
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.int16, 0x0C: np.int32, 0x0D: np.float32,
           0x0E: np.float64}


def read_idx(path: str) -> np.ndarray:
  """Parses an IDX file (gzipped or not); anything malformed raises ConfigError naming the file."""
  fix = f"Replace {path} with an intact copy of the original file."
  try:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
      raw = f.read()
  except (OSError, EOFError, zlib.error) as e:
    raise ConfigError(f"Corrupt IDX file {path}: cannot decompress ({e}). {fix}") from None
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
    raise ConfigError(f"Corrupt IDX file {path}: bad magic number {raw[:4].hex()}. {fix}")
  ndim = raw[3]
  header = 4 + 4 * ndim
  dims = tuple(int(d) for d in np.frombuffer(raw[4:header], ">i4"))
  dtype = np.dtype(_DTYPES[raw[2]]).newbyteorder(">")
  expected = header + int(np.prod(dims)) * dtype.itemsize
  if len(dims) != ndim or len(raw) != expected:
    raise ConfigError(f"Corrupt IDX file {path}: header says shape {dims} ({expected} bytes) but "
                      f"the file has {len(raw)} bytes. {fix}")
  return np.frombuffer(raw[header:], dtype).reshape(dims).astype(dtype.newbyteorder("="))


class MnistIdxConfig(tfds.core.BuilderConfig):

  def __init__(self, *, subdir: str, prefix: str, **kwargs):
    super().__init__(**kwargs)
    self.subdir = subdir
    self.prefix = prefix


def raw_files(raw_dir: str, config: MnistIdxConfig) -> dict[str, str]:
  folder = os.path.join(raw_dir, config.subdir)
  return {k: os.path.join(folder, f"{config.prefix}-{k}-ubyte.gz")
          for k in ("images-idx3", "labels-idx1")}


def check_raw(raw_dir: str, config: MnistIdxConfig) -> None:
  missing = [p for p in raw_files(raw_dir, config).values() if not os.path.isfile(p)]
  if missing:
    raise ConfigError(
        f"Missing raw file(s) {missing}. Data set mnist_idx/{config.name} reads IDX files from "
        f"<data dir>/{config.subdir}/ (data dir: --config.data.data_dir or $AIGC_JAX_DATA, laid "
        f"out like shared/data/: {config.subdir}/{config.prefix}-images-idx3-ubyte.gz and "
        f"{config.subdir}/{config.prefix}-labels-idx1-ubyte.gz).")


class Builder(tfds.core.GeneratorBasedBuilder):
  """MNIST digits from IDX files: an 8,000 / 2,000 train/test carve-out of one split."""

  name = "mnist_idx"
  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [
      MnistIdxConfig(name="mnist", subdir="mnist", prefix="t10k",
                     description="MNIST test split carved 8,000/2,000."),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = "Set $AIGC_JAX_DATA to a folder holding mnist/t10k-*-ubyte.gz."

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            # Raw uint8 tensors: tfds' Image feature needs TensorFlow to encode PNG.
            "image": tfds.features.Tensor(shape=(28, 28, 1), dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("image", "label"),
    )

  def _split_generators(self, dl_manager):
    files = raw_files(str(dl_manager.manual_dir), self.builder_config)
    images = read_idx(files["images-idx3"])
    labels = read_idx(files["labels-idx1"])
    if images.ndim != 3 or labels.shape != images.shape[:1]:
      raise ConfigError(f"IDX files {list(files.values())} disagree: images {images.shape}, "
                        f"labels {labels.shape}.")
    order = np.random.default_rng(CARVE_SEED).permutation(len(images))
    return {
        "train": self._generate_examples(images, labels, order[:NUM_TRAIN]),
        "test": self._generate_examples(images, labels, order[NUM_TRAIN:]),
    }

  def _generate_examples(self, images, labels, indices):
    for i in indices:
      yield int(i), {"image": images[i][..., None], "label": int(labels[i])}
