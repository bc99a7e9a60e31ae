"""Data set names -> prepared tfds builders -> random-access sources (no TensorFlow needed).

Names of local builders (aigc_jax/data/builders) are prepared from raw files in the data
directory; every other name goes to the tfds catalog unchanged. "name/config" picks a builder
config, as in tfds.
"""

import dataclasses
import os
import shlex

import jax
import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from jax.experimental import multihost_utils

from aigc_jax import registry
from aigc_jax.errors import ConfigError

DATA_ENV = "AIGC_JAX_DATA"


def _audio_without_tensorflow() -> None:
  """Lets tfds' Audio feature (catalog speech and music data sets) work without TensorFlow.

  Its decoder asks TensorFlow for a dtype at construction, used only by TensorFlow graphs; the
  array_record sources this project reads return numpy arrays and never need it. Without
  TensorFlow installed, the dtype is kept as numpy's instead of failing to build the data set.
  """
  import importlib.util
  if importlib.util.find_spec("tensorflow") is not None:
    return
  from tensorflow_datasets.core.features import audio_feature
  decoder = getattr(audio_feature, "_AudioDecoder", None)
  if decoder is None or getattr(decoder, "_aigc_jax_numpy", False):
    return

  def init(self, file_format, np_dtype, shape):
    self._file_format, self._np_dtype, self._dtype = file_format, np_dtype, np_dtype
    self._shape = shape
    self._channels = shape[1] if len(shape) > 1 else 1

  decoder.__init__ = init
  decoder._aigc_jax_numpy = True


def _video_without_tensorflow() -> None:
  """Lets tfds' Video feature (the catalog's moving_mnist ...) be built without TensorFlow.

  Its constructor only converts the frame dtype with TensorFlow before handing it to the Image
  feature, which takes numpy's; that one call is answered with numpy's dtype instead.
  """
  import importlib.util
  import types
  if importlib.util.find_spec("tensorflow") is not None:
    return
  from tensorflow_datasets.core.features import video_feature
  if getattr(video_feature, "_aigc_jax_numpy", False):
    return
  video_feature.tf = types.SimpleNamespace(dtypes=types.SimpleNamespace(as_dtype=np.dtype))
  video_feature._aigc_jax_numpy = True


_audio_without_tensorflow()
_video_without_tensorflow()


def local_builders() -> list[str]:
  return registry.available("aigc_jax.data.builders")


def builder_sections() -> dict:
  """{key: ConfigDict of defaults} of every local builder with build options (`SECTION`)."""
  out = {}
  for name in local_builders():
    section = getattr(registry.import_member("aigc_jax.data.builders", name, "data set"),
                      "SECTION", None)
    if section:
      key, options_cls = section
      out[key] = ml_collections.ConfigDict(dataclasses.asdict(options_cls()))
  return out


def raw_dir(data_config) -> str:
  path = data_config.data_dir or os.environ.get(DATA_ENV, "")
  if not path:
    raise ConfigError(f"No data directory: set --config.data.data_dir or ${DATA_ENV} to a folder "
                      "laid out like shared/data/ (e.g. mnist/t10k-images-idx3-ubyte.gz).")
  if not os.path.isdir(path):
    raise ConfigError(f"Data directory {path!r} (from --config.data.data_dir or ${DATA_ENV}) does "
                      "not exist; point it at a folder laid out like shared/data/.")
  return path


def get_builder(data_config) -> tfds.core.DatasetBuilder:
  """Returns a prepared builder (array_record), building local data sets on first use."""
  name, _, config_name = data_config.name.partition("/")
  tfds_dir = data_config.tfds_dir or None
  if name in local_builders():
    module = registry.import_member("aigc_jax.data.builders", name, "data set")
    config = config_name or None
    if hasattr(module, "make_config"):  # configs made from the data config (e.g. a folder)
      config = module.make_config(config_name, data_config)

    def prepare():
      builder = module.Builder(config=config, data_dir=tfds_dir, file_format="array_record")
      manual = None
      if not builder.is_prepared() and _needs_raw(module, builder):
        manual = raw_dir(data_config)
        module.check_raw(manual, builder.builder_config)
      builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
          manual_dir=manual, beam_options=_beam_options(data_config.beam_options)))
      return builder

    return _first_process_first(prepare, data_config.name)

  def prepare():
    _register_legacy(name)
    try:
      builder = tfds.builder(data_config.name, data_dir=tfds_dir, file_format="array_record")
    except tfds.core.registered.DatasetNotFoundError:
      raise ConfigError(
          f"Unknown data set {data_config.name!r}: neither a local builder "
          f"({', '.join(local_builders())}) nor in the tfds catalog.") from None
    builder.download_and_prepare()
    return builder

  return _first_process_first(prepare, data_config.name)


def _register_legacy(name: str) -> None:
  """Imports the module of a catalog builder that lives in one of tfds' family packages
  (tensorflow_datasets/video/moving_mnist.py ...): those register only once their family is
  imported, which tfds' own import skips when a sibling family fails without TensorFlow."""
  import glob  # pylint: disable=import-outside-toplevel
  import importlib  # pylint: disable=import-outside-toplevel
  root = os.path.dirname(tfds.__file__)
  for path in glob.glob(os.path.join(root, "*", f"{name}.py")):
    family = os.path.basename(os.path.dirname(path))
    try:
      importlib.import_module(f"tensorflow_datasets.{family}.{name}")
    except ImportError:
      pass  # tfds.builder then reports the name as unknown


def _first_process_first(prepare, name: str):
  """prepare() on process 0 while the others wait, then on the others (a no-op where the data
  directory is shared, a local copy where it is not): processes never write one folder at once,
  and the others read the data set's info only once it is complete."""
  if jax.process_count() == 1:
    return prepare()
  builder = prepare() if jax.process_index() == 0 else None
  multihost_utils.sync_global_devices(f"aigc_jax: data set {name} prepared")
  return builder or prepare()


def _beam_options(flags: str):
  if not flags:
    return None
  try:
    from apache_beam.options.pipeline_options import PipelineOptions
  except ImportError:
    raise ConfigError("data.beam_options is set but Apache Beam is not installed: "
                      "pip install apache-beam (or unset data.beam_options).") from None
  return PipelineOptions(flags=shlex.split(flags))


def _needs_raw(module, builder) -> bool:
  needs = getattr(module, "needs_raw", lambda config: hasattr(module, "check_raw"))
  return needs(builder.builder_config)


def get_source(builder: tfds.core.DatasetBuilder, split: str):
  splits = list(builder.info.splits)
  if splits and split.split("[")[0] not in splits:  # empty under tfds.testing.mock_data
    raise ConfigError(f"Data set {builder.name!r} has no split {split!r}; splits: {splits}.")
  return builder.as_data_source(split=split)
