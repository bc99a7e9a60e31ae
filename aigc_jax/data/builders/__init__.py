"""Local tfds builders: `aigc_jax/data/builders/<name>.py` defines `Builder` for data set <name>.

Each reads raw files from a data directory (`config.data.data_dir` or `$AIGC_JAX_DATA`, laid out
like `../shared/data/`) and writes array_record, readable with `tfds.data_source` without
TensorFlow. A module may define `check_raw(raw_dir, builder_config)` to fail early and clearly, and
`needs_raw(builder_config)` when only some configs read files.
"""

import dataclasses
import hashlib
import json

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
