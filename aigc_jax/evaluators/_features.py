"""Features of a labelled train split and an evaluation split, for probes (linear, kNN)."""

import jax
import numpy as np

from aigc_jax import evaluators

INPUT = "input"  # fn="input": the raw inputs, flattened (the pixel baseline)


def make_extractor(name, ec, ctx):
  """fn(variables) -> (train_x, train_y, test_x, test_y, num_classes); checks labels and the
  task's function before compiling. Raw inputs are read once."""
  train_split = ec.train_split or ctx.config.data.train_split
  for split in (train_split, ec.split):
    ctx.require_labels(split, name)
  encode = None if ec.fn == INPUT else jax.jit(
      ctx.fn(ec.fn, name), in_shardings=(ctx.variables_sharding, ctx.batch_sharding))
  cache = {}

  def features(variables, split):
    if encode is None:
      if split not in cache:
        data = ctx.split(split)
        cols = data.load(np.arange(len(data)))
        cache[split] = (np.asarray(cols["input"], np.float32).reshape(len(data), -1),
                        np.asarray(cols["label"]).reshape(-1))
      return cache[split]
    return evaluators.host_features(encode, variables,
                                    ctx.batches(split, ec.batch_size, ec.augment))

  def extract(variables):
    tr_x, tr_y = features(variables, train_split)
    te_x, te_y = features(variables, ec.split)
    tr_x, te_x = tr_x.reshape(len(tr_x), -1), te_x.reshape(len(te_x), -1)
    k = ec.num_classes or int(max(tr_y.max(), te_y.max())) + 1
    return tr_x, tr_y.astype(np.int32), te_x, te_y.astype(np.int32), k

  return extract
