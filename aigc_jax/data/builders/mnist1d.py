"""MNIST-1D (Greydanus 2020): 4,000 train / 1,000 test sequences of length 40, ten classes.

Splits: train (3,500), validation (500 of the 4,000 training sequences, drawn with seed 0; the
split for every choice) and the canonical 1,000-sequence test split (reported).

Config `generated` (default) builds it offline with the `mnist1d` package's canonical arguments,
which reproduce the published pickle exactly; config `pickle` reads
`$AIGC_JAX_DATA/mnist1d/mnist1d_data.pkl`.
"""

import os
import pickle

import numpy as np
import tensorflow_datasets as tfds

from aigc_jax.errors import ConfigError

PICKLE = os.path.join("mnist1d", "mnist1d_data.pkl")
VALIDATION_SIZE, VALIDATION_SEED = 500, 0


def needs_raw(config) -> bool:
  return config.name == "pickle"  # the default is generated from code


def check_raw(raw_dir: str, config) -> None:
  if not os.path.isfile(os.path.join(raw_dir, PICKLE)):
    raise ConfigError(f"Missing {os.path.join(raw_dir, PICKLE)}: mnist1d/pickle reads "
                      f"<data dir>/{PICKLE} (data dir: --config.data.data_dir or $AIGC_JAX_DATA). "
                      "Use data.name=mnist1d to generate the data set from code instead.")


def load_arrays(config_name: str, raw_dir: str | None) -> dict:
  if config_name == "pickle":
    path = os.path.join(raw_dir, PICKLE)
    try:
      with open(path, "rb") as f:
        d = pickle.load(f)
      return {k: np.asarray(d[k]) for k in ("x", "y", "x_test", "y_test")}
    except (pickle.UnpicklingError, EOFError, KeyError) as e:
      raise ConfigError(f"Corrupt MNIST-1D pickle {path}: {e!r}.") from None
  from mnist1d.data import get_dataset_args, make_dataset  # pylint: disable=import-outside-toplevel
  d = make_dataset(get_dataset_args())  # canonical arguments (seed 42)
  return {k: np.asarray(d[k]) for k in ("x", "y", "x_test", "y_test")}


class Builder(tfds.core.GeneratorBasedBuilder):
  """MNIST-1D, generated from code or read from the canonical pickle."""

  name = "mnist1d"
  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.1.0": "A validation split: 500 of the 4,000 training sequences (seed 0).",
                   "1.0.0": "4,000 train / 1,000 test."}
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name="generated", description="Made by the mnist1d package."),
      tfds.core.BuilderConfig(name="pickle", description="Read from mnist1d_data.pkl."),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"For config `pickle`: set $AIGC_JAX_DATA to a folder with {PICKLE}."

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "x": tfds.features.Tensor(shape=(40,), dtype=np.float32),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("x", "label"),
    )

  def _split_generators(self, dl_manager):
    raw_dir = str(dl_manager.manual_dir) if self.builder_config.name == "pickle" else None
    d = load_arrays(self.builder_config.name, raw_dir)
    is_val = np.zeros(len(d["x"]), bool)
    is_val[np.random.default_rng(VALIDATION_SEED).permutation(len(d["x"]))[:VALIDATION_SIZE]] = True
    return {"train": self._generate_examples(d["x"], d["y"], np.flatnonzero(~is_val)),
            "validation": self._generate_examples(d["x"], d["y"], np.flatnonzero(is_val)),
            "test": self._generate_examples(d["x_test"], d["y_test"])}

  def _generate_examples(self, xs, ys, indices=None):
    """Keys are indices into the canonical arrays, so a split's members can be traced back."""
    for i in range(len(xs)) if indices is None else indices:
      yield int(i), {"x": xs[i].astype(np.float32), "label": int(ys[i])}
