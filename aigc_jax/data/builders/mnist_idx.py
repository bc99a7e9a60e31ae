"""MNIST-format 28x28 sets (MNIST, Fashion-MNIST, KMNIST) from IDX or npz files in a local folder.

Config `<name>` reads `<data dir>/<name>/`: `{train,t10k}-images-idx3-ubyte` and
`{train,t10k}-labels-idx1-ubyte` (gzipped or not; KMNIST also as `kmnist-{train,test}-{imgs,labels}
.npz`). Splits are train, validation (for every choice) and test (reported), the validation split
an eighth of the training side drawn with a fixed permutation (seed 0), so every run and machine
sees the same splits. With the train files present: 52,500 / 7,500 of the official 60,000 train
images, and the official 10,000 test. Offline only the MNIST test split exists, so with only the
t10k files the builder carves them 7,000 / 1,000 / 2,000 with a fixed permutation (seed 0); the
2,000 test images are the ones the 8,000 / 2,000 carve of version 1.1 held out. A prepared copy is
not rebuilt when train files are added later: delete `<tfds dir>/mnist_idx/<name>` to rebuild.
"""

import gzip
import os
import zipfile
import zlib

import numpy as np
import tensorflow_datasets as tfds

from aigc_jax.data.builders import image_label_info
from aigc_jax.errors import ConfigError

CARVE_SEED = 0
CARVE_TRAIN_FRACTION = 0.8  # the training side: 8,000 of the 10,000 test images
VALIDATION_FRACTION = 0.125  # of the training side: 1,000 of the carve's 8,000, 7,500 of 60,000
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


def read_npz(path: str) -> np.ndarray:
  """The one array (key `arr_0`) of a KMNIST-style npz file."""
  try:
    with np.load(path) as f:
      return f["arr_0"]
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
    raise ConfigError(f"Corrupt npz file {path}: {e}. Replace it with an intact copy of the "
                      "original file (one array under key 'arr_0').") from None


def read_array(path: str) -> np.ndarray:
  return read_npz(path) if path.endswith(".npz") else read_idx(path)


class MnistIdxConfig(tfds.core.BuilderConfig):

  def __init__(self, *, subdir: str, names: list[str], npz_prefix: str = "", **kwargs):
    super().__init__(**kwargs)
    self.subdir = subdir
    self.names = names
    self.npz_prefix = npz_prefix


def _file_names(config: MnistIdxConfig, split: str, what: str) -> list[str]:
  """Names that may hold `what` ("images"/"labels") of `split`, the preferred one first."""
  idx = f"{'t10k' if split == 'test' else 'train'}-{what}-idx{3 if what == 'images' else 1}-ubyte"
  names = [idx + ".gz", idx]
  if config.npz_prefix:
    names.append(f"{config.npz_prefix}-{split}-{'imgs' if what == 'images' else 'labels'}.npz")
  return names


def raw_files(raw_dir: str, config: MnistIdxConfig) -> dict[tuple[str, str], str | None]:
  """{(split, "images"/"labels"): the file found, or None}."""
  folder = os.path.join(raw_dir, config.subdir)
  found = {}
  for split in ("train", "test"):
    for what in ("images", "labels"):
      paths = (os.path.join(folder, n) for n in _file_names(config, split, what))
      found[split, what] = next((p for p in paths if os.path.isfile(p)), None)
  return found


def check_raw(raw_dir: str, config: MnistIdxConfig) -> None:
  found = raw_files(raw_dir, config)
  has_train = found["train", "images"] or found["train", "labels"]
  wanted = [k for k in found if k[0] == "test" or has_train]  # train files: both or neither
  missing = [os.path.join(raw_dir, config.subdir, _file_names(config, *k)[0])
             for k in wanted if not found[k]]
  if missing:
    npz = (f" KMNIST may instead be {config.npz_prefix}-{{train,test}}-{{imgs,labels}}.npz."
           if config.npz_prefix else "")
    raise ConfigError(
        f"Missing raw file(s) {missing}. Data set mnist_idx/{config.name} reads IDX files from "
        f"<data dir>/{config.subdir}/ (data dir: --config.data.data_dir or $AIGC_JAX_DATA, laid "
        f"out like shared/data/): {config.subdir}/t10k-images-idx3-ubyte.gz and "
        f"{config.subdir}/t10k-labels-idx1-ubyte.gz, gzipped or not, plus "
        f"train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz for the official train "
        f"split (without them the t10k files are carved 8,000 / 2,000).{npz}")


def load_split(found: dict, split: str) -> tuple[np.ndarray, np.ndarray]:
  """(images (N, 28, 28) uint8, labels (N,)) of one split, checked against each other."""
  files = [found[split, "images"], found[split, "labels"]]
  images, labels = (read_array(p) for p in files)
  if images.shape[1:] != (28, 28) or images.dtype != np.uint8:
    raise ConfigError(f"{files[0]} holds {images.dtype} images of shape {images.shape}; expected "
                      "uint8 (N, 28, 28). Replace it with the original file.")
  if labels.shape != images.shape[:1] or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
    raise ConfigError(f"Raw files {files} disagree: images {images.shape}, labels {labels.shape} "
                      "(expected one label 0-9 per image). Replace them with the original files.")
  return images, labels


def validation_carve(train_side: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(train, validation) indices: a seeded eighth of the training side is validation, each part
  in its original order."""
  chosen = np.random.default_rng(CARVE_SEED + 1).permutation(len(train_side))
  n_val = int(round(len(train_side) * VALIDATION_FRACTION))
  is_val = np.zeros(len(train_side), bool)
  is_val[chosen[:n_val]] = True
  return train_side[~is_val], train_side[is_val]


def carve(found: dict) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
  """{split: (images, labels, indices into them or None for all)} for train, validation, test:
  the official files' splits when the train files exist, else the t10k carve."""
  images, labels = load_split(found, "test")
  if found["train", "images"]:
    train_images, train_labels = load_split(found, "train")
    train, val = validation_carve(np.arange(len(train_images)))
    return {"train": (train_images, train_labels, train),
            "validation": (train_images, train_labels, val), "test": (images, labels, None)}
  order = np.random.default_rng(CARVE_SEED).permutation(len(images))
  cut = int(len(images) * CARVE_TRAIN_FRACTION)
  train, val = validation_carve(order[:cut])
  return {"train": (images, labels, train), "validation": (images, labels, val),
          "test": (images, labels, order[cut:])}


class Builder(tfds.core.GeneratorBasedBuilder):
  """28x28 grey images from IDX/npz files: official splits, or a carve-out; train, validation
  and test either way."""

  name = "mnist_idx"
  VERSION = tfds.core.Version("1.2.0")
  RELEASE_NOTES = {
      "1.2.0": "A validation split, an eighth of the training side (seed 0): the carve is "
               "7,000 / 1,000 / 2,000 with the same 2,000 test images; official files give "
               "52,500 / 7,500 / 10,000.",
      "1.1.0": "Configs fashion_mnist and kmnist (npz too); official train/test splits when the "
               "train files exist; uncompressed IDX files. The t10k carve-out is unchanged.",
      "1.0.0": "MNIST t10k carved 8,000 / 2,000.",
  }
  BUILDER_CONFIGS = [
      MnistIdxConfig(name="mnist", subdir="mnist", names=[str(i) for i in range(10)],
                     description="MNIST digits."),
      MnistIdxConfig(name="fashion_mnist", subdir="fashion_mnist",
                     names=["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                            "Shirt", "Sneaker", "Bag", "Ankle boot"],
                     description="Fashion-MNIST (Xiao et al. 2017) clothing images."),
      # Kuzushiji-MNIST (Clanuwat et al. 2018): the hiragana お き す つ な は ま や れ を.
      MnistIdxConfig(name="kmnist", subdir="kmnist", npz_prefix="kmnist",
                     names=["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
                     description="Kuzushiji-MNIST cursive Japanese characters."),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = ("Set $AIGC_JAX_DATA to a folder holding <config>/"
                                  "{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz.")

  def _info(self):
    return image_label_info(self, (28, 28, 1),
                            tfds.features.ClassLabel(names=self.builder_config.names), __doc__)

  def _split_generators(self, dl_manager):
    found = raw_files(str(dl_manager.manual_dir), self.builder_config)
    return {split: self._generate_examples(images, labels, indices)
            for split, (images, labels, indices) in carve(found).items()}

  def _generate_examples(self, images, labels, indices=None):
    for i in range(len(images)) if indices is None else indices:
      yield int(i), {"image": images[i][..., None], "label": int(labels[i])}
