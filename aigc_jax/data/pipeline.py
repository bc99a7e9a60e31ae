"""Splits by data config, and grain input pipelines over them: seeded per-epoch shuffles,
per-host shards, checkpointable iterators.

The pipeline is a grain graph over *global batches of indices*: every host draws the same
per-epoch permutation and keeps its own slice of each global batch, so the examples a step trains
on do not depend on the number of hosts, and resuming needs only the batch counter. Small data
sets are decoded and preprocessed once into host memory as columns (`cache=True`) and batches
are gathered by index; large ones read their records from the array_record source per batch.
"""

import math
import sys

import grain
import jax
import numpy as np

from aigc_jax.data import audio, clean, ops, sources, splits, tokens, video
from aigc_jax.errors import ConfigError

class GlobalBatchIndices(grain.MapDataset):
  """Element i: this host's slice of global batch i, under a fresh permutation every epoch.

  Vectorised over the batch: grain's per-element shuffle costs ~25us an example in Python.
  """

  def __init__(self, num_examples: int, global_batch: int, seed: int, process_index: int,
               process_count: int, shuffle: bool = True):
    super().__init__()
    self._n, self._global = num_examples, global_batch
    self._local = global_batch // process_count
    self._offset = process_index * self._local
    self._per_epoch = num_examples // global_batch
    self._seed = seed
    self._shuffle = shuffle
    self._cache = (None, None)

  def __len__(self) -> int:
    return sys.maxsize  # endless; epochs are index // batches_per_epoch

  def __str__(self) -> str:
    return f"GlobalBatchIndices(n={self._n}, batch={self._global}, seed={self._seed})"

  def _permutation(self, epoch: int) -> np.ndarray:
    if not self._shuffle:
      return np.arange(self._n)
    if self._cache[0] != epoch:
      self._cache = (epoch, np.random.default_rng((self._seed, epoch)).permutation(self._n))
    return self._cache[1]

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    if not self._shuffle:  # also the endless splits (generated data), whose range never ends
      start = (index * self._global + self._offset) % (self._per_epoch * self._global)
      return np.arange(start, start + self._local)
    epoch, b = divmod(index, self._per_epoch)
    start = b * self._global + self._offset
    return self._permutation(epoch)[start:start + self._local]


def validate(data_config) -> None:
  """Data-config errors that need no data: preprocessing ops, cleaning ops, tokenizer settings,
  the labelled subset."""
  ops.parse(data_config.preprocess)
  clean.parse(data_config.text.clean)
  if data_config.tokenizer:
    tokens.validate(data_config)
  audio.validate(data_config.audio)
  video.validate(data_config.video)
  if data_config.labels_per_class < 0:
    raise ConfigError(f"data.labels_per_class={data_config.labels_per_class} must be >= 0 "
                      "(0: every training example).")


def load_train_split(data_config, seed: int) -> splits.Split:
  """The training split, or with data.labels_per_class > 0 a stratified labelled subset of it
  (drawn with data.subset_seed, or the run's seed when that is -1): few-label transfer."""
  split = load_split(data_config, data_config.train_split)
  n = data_config.labels_per_class
  if not n:
    return split
  if not split.columns or "label" not in split.columns:
    raise ConfigError("data.labels_per_class needs a labelled training split held in memory "
                      "(data.cache=True, a 'label' feature).")
  idx = splits.stratified_subset(split.columns["label"], n,
                          seed if data_config.subset_seed < 0 else data_config.subset_seed)
  return splits.Records(columns={k: v[idx] for k, v in split.columns.items()}, source=None,
                        fn=split.fn)


def load_split(data_config, split: str) -> splits.Split:
  """The one place that picks a split's kind: token sequences of a text data set when
  data.tokenizer is set (language models), windows of samples when data.audio.window is, else
  preprocessed records."""
  if data_config.tokenizer:
    return tokens.load_split(data_config, split)
  if data_config.audio.window:
    return audio.load_split(data_config, split)
  if data_config.video.frames:
    return video.load_split(data_config, split)
  fn = ops.parse(data_config.preprocess)
  builder = sources.get_builder(data_config)
  source = sources.get_source(builder, split)
  if data_config.cache:
    return splits.Records(columns=splits.to_columns(source, fn), source=None, fn=fn)
  return splits.Records(columns=None, source=source, fn=fn)


def train_iterator(split: splits.Split, *, global_batch: int, seed: int, process_index: int,
                   process_count: int, prefetch: int = 2, shuffle: bool = True):
  """An endless, per-epoch reshuffled iterator of this host's batches; `get_state()` resumes it."""
  if len(split) < global_batch:
    raise ConfigError(f"The training split has {len(split)} examples, fewer than the global "
                      f"batch {global_batch}; lower data.batch_size.")
  # An endless split (a pure function of the index) is read in order: its examples never repeat.
  shuffle = shuffle and not getattr(split, "endless", False)
  ds = GlobalBatchIndices(len(split), global_batch, seed, process_index, process_count, shuffle)
  it_ds = ds.map(split.load).to_iter_dataset(
      grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
  if prefetch > 0:  # a background thread prepares the next batches while the step runs
    it_ds = grain.experimental.ThreadPrefetchIterDataset(it_ds, prefetch_buffer_size=prefetch)
  return iter(it_ds)


def eval_batches(split: splits.Split, *, local_batch: int, process_index: int, process_count: int):
  """Every example once, in order, split over hosts; the last batches are padded and masked so
  every host runs the same number of batches."""
  n = len(split)
  per_host = math.ceil(n / process_count)
  num_batches = math.ceil(per_host / local_batch)
  mine = np.arange(process_index, n, process_count)
  for b in range(num_batches):
    idx = mine[b * local_batch:(b + 1) * local_batch]
    pad = local_batch - len(idx)
    batch = split.load(np.concatenate([idx, np.zeros(pad, idx.dtype)]) if pad else idx)
    batch["mask"] = np.arange(local_batch) < len(idx)
    yield batch


def batch_spec(split: splits.Split, global_batch: int) -> dict:
  """Abstract global batch: what models are initialised and the step is compiled with (text
  features stay on the host, see sharding.host_to_global)."""
  return {k: jax.ShapeDtypeStruct((global_batch,) + tuple(shape), dtype)
          for k, (shape, dtype) in split.example_spec().items()
          if np.dtype(dtype).kind in "biuf"}
