"""The 1,797 8x8 handwritten digits shipped inside scikit-learn (UCI optdigits test set).

Built offline from `sklearn.datasets.load_digits`: images uint8 (8, 8, 1) with the shipped grey
levels 0-16 (use `value_range(0, 1, in_max=16)`), labels 0-9. A fixed permutation (seed 0) puts
1,437 in train and 360 in test, the sizes of scikit-learn's usual 80/20 `train_test_split`.
"""

import numpy as np
import tensorflow_datasets as tfds

from aigc_jax.data.builders import image_label_info
from aigc_jax.errors import ConfigError

SEED = 0
NUM_TRAIN = 1437


def needs_raw(config) -> bool:
  del config
  return False  # the data ships with scikit-learn


class Builder(tfds.core.GeneratorBasedBuilder):
  """scikit-learn's 8x8 digits, split 1,437 / 360."""

  name = "sklearn_digits"
  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return image_label_info(self, (8, 8, 1), tfds.features.ClassLabel(num_classes=10), __doc__)

  def _split_generators(self, dl_manager):
    try:
      from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
    except ImportError:
      raise ConfigError("sklearn_digits needs scikit-learn: pip install scikit-learn.") from None
    d = load_digits()
    images = d.images.astype(np.uint8)[..., None]  # whole numbers 0-16 stored as float64
    order = np.random.default_rng(SEED).permutation(len(images))
    return {"train": self._generate_examples(images, d.target, order[:NUM_TRAIN]),
            "test": self._generate_examples(images, d.target, order[NUM_TRAIN:])}

  def _generate_examples(self, images, labels, indices):
    for i in indices:
      yield int(i), {"image": images[i], "label": int(labels[i])}
