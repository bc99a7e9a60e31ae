"""The PCA baseline of an autoencoder: the best linear code of the same size.

Fits the top `components` principal directions of the train split's inputs (flattened) and
reports the evaluated split's reconstruction error through them, in the autoencoder task's
units: `mse` per pixel. Computed once per run (it does not depend on the model).
"""

import numpy as np

DEFAULTS = {"components": 0, "train_split": ""}  # components 0: model.latent_dim


def make(name, ec, ctx):
  del name
  k = ec.components or ctx.config.model.latent_dim
  train_split = ec.train_split or ctx.config.data.train_split
  cache = {}

  def flat(split):
    data = ctx.split(split)
    return np.asarray(data.load(np.arange(len(data)))["input"], np.float64).reshape(len(data), -1)

  def run(variables, step, rng):
    del variables, step, rng
    if not cache:
      train, test = flat(train_split), flat(ec.split)
      mean = train.mean(axis=0)
      _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
      basis = vt[:k]  # [k, D]
      recon = (test - mean) @ basis.T @ basis + mean
      cache.update(mse=float(np.mean((recon - test) ** 2)), components=float(k))
    return dict(cache)

  return run
