"""The one split interface every data set is read through (records or token sequences).

A split has a length, an example spec and `load(indices)`; the pipeline (aigc_jax/data/pipeline.py)
picks the kind from the data config and batches any of them the same way.
"""

import dataclasses
from typing import Protocol

import numpy as np

from aigc_jax.errors import ConfigError


class Split(Protocol):
  """What the pipeline, the evaluators and the options read a split through."""

  def __len__(self) -> int: ...

  def example_spec(self) -> dict:
    """{feature: (shape, dtype)} of one example."""

  def load(self, indices) -> dict:
    """The examples at `indices`, stacked feature by feature ({feature: [len(indices), ...]})."""

  # Optional: `endless = True` marks a split whose examples are a pure function of their index
  # with no end (generated data, data/video.py): `len` is sys.maxsize, the pipeline reads it in
  # order instead of shuffling, and train.num_epochs is refused.


def is_test(split: str) -> bool:
  """Whether `split` names a test split ("test", "test[:50%]", "test2015" ...): the split results
  are reported on, so nothing may be chosen on it."""
  return split.split("[")[0].strip().lower().startswith("test")


_READ_CHUNK = 1024


def _read(source, indices: list[int]):
  # Record by record: tfds' batched __getitems__ breaks under tfds.testing.mock_data, and
  # decoding, not reading, dominates either way.
  return [source[i] for i in indices]


def to_columns(source, fn) -> dict[str, np.ndarray]:
  """Reads every record of `source`, applies `fn`, stacks each feature into one array."""
  rows = []
  for start in range(0, len(source), _READ_CHUNK):
    idx = list(range(start, min(start + _READ_CHUNK, len(source))))
    rows.extend(fn(r) for r in _read(source, idx))
  if not rows:
    raise ConfigError("The data split is empty.")
  return _stack(rows)


def _stack(rows: list[dict]) -> dict[str, np.ndarray]:
  """Records -> one array per feature, in JAX's 32-bit types."""
  return {k: _x32(np.stack([np.asarray(r[k]) for r in rows])) for k in rows[0]}


def _x32(x: np.ndarray) -> np.ndarray:
  """64-bit numbers -> 32-bit: JAX computes in 32 bits unless x64 is enabled."""
  if x.dtype == np.int64:
    return x.astype(np.int32)
  if x.dtype == np.float64:
    return x.astype(np.float32)
  return x


@dataclasses.dataclass
class Records:
  """A split of records: preprocessed columns in memory, or a lazily mapped record source."""
  columns: dict | None
  source: object | None
  fn: object

  def __len__(self):
    return len(next(iter(self.columns.values()))) if self.columns else len(self.source)

  def example_spec(self) -> dict:
    if self.columns:
      return {k: (v.shape[1:], v.dtype) for k, v in self.columns.items()}
    ex = self.fn(self.source[0])
    return {k: (np.shape(v), np.asarray(v).dtype) for k, v in ex.items()}

  def load(self, indices) -> dict:
    """The preprocessed examples at `indices`, stacked feature by feature."""
    if self.columns:
      return {k: v[indices] for k, v in self.columns.items()}
    recs = [self.fn(r) for r in _read(self.source, [int(i) for i in indices])]
    return _stack(recs)


def stratified_subset(labels, per_class: int, seed: int) -> np.ndarray:
  """Sorted indices of `per_class` examples of every class, drawn with `seed`; a class with
  fewer examples is an error."""
  labels = np.asarray(labels).reshape(len(labels), -1)[:, 0]
  rng = np.random.default_rng(seed)
  picked = []
  for k in np.unique(labels):
    idx = np.flatnonzero(labels == k)
    if len(idx) < per_class:
      raise ConfigError(f"data.labels_per_class={per_class} but class {k} has only {len(idx)} "
                        "training examples; lower it.")
    picked.append(rng.choice(idx, per_class, replace=False))
  return np.sort(np.concatenate(picked))
