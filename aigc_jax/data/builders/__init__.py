"""Local tfds builders: `aigc_jax/data/builders/<name>.py` defines `Builder` for data set <name>.

Each reads raw files from a data directory (`config.data.data_dir` or `$AIGC_JAX_DATA`, laid out
like `../shared/data/`) and writes array_record, readable with `tfds.data_source` without
TensorFlow. A module may define `check_raw(raw_dir, builder_config)` to fail early and clearly,
`needs_raw(builder_config)` when only some configs read files, and `SECTION = (key, Options)`:
its build options as a dataclass, whose defaults the base config carries as `config.data.<key>`.
"""

import dataclasses
import hashlib
import json

import numpy as np
import tensorflow_datasets as tfds


class FolderConfig(tfds.core.BuilderConfig):
  """A builder config for one folder of raw files, with a dataclass of build options."""

  def __init__(self, *, folder: str, options, **kwargs):
    super().__init__(**kwargs)
    self.folder = folder
    self.options = options


def folder_config(folder: str, options, description: str) -> FolderConfig:
  """The config for `folder`; non-default options get their own prepared copy, named by a hash."""
  name = folder
  if options != type(options)():
    digest = hashlib.sha1(json.dumps(dataclasses.asdict(options), sort_keys=True).encode())
    name = f"{folder}-{digest.hexdigest()[:8]}"
  return FolderConfig(name=name, folder=folder, options=options, description=description)


def image_label_info(builder, shape: tuple, label: tfds.features.ClassLabel,
                     description: str) -> tfds.core.DatasetInfo:
  """{"image": uint8 HxWxC, "label"} info. Images are raw tensors, since tfds' Image feature needs
  TensorFlow to encode PNG; a shape with unknown dimensions is stored per image (bytes)."""
  encoding = "bytes" if None in shape else "none"
  return tfds.core.DatasetInfo(
      builder=builder, description=description,
      features=tfds.features.FeaturesDict({
          "image": tfds.features.Tensor(shape=shape, dtype=np.uint8, encoding=encoding),
          "label": label,
      }),
      supervised_keys=("image", "label"))
