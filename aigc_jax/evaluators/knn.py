"""k-nearest-neighbour accuracy: cosine similarity of frozen features of the evaluated split to
those of a labelled train split, majority vote of the k nearest (weighted by exp(sim / T) when
temperature > 0, as in Wu et al. 2018). `fn` as for linear_probe ("input": raw pixels)."""

from aigc_jax.evaluators import _features, probe_lib

DEFAULTS = {"fn": "encode", "train_split": "", "num_classes": 0, "k": 20, "temperature": 0.0,
            "augment": ""}


def make(name, ec, ctx):
  extract = _features.make_extractor(name, ec, ctx)

  def run(variables, step, rng):
    del step, rng
    tr_x, tr_y, te_x, te_y, k = extract(variables)
    return {"accuracy": float(probe_lib.knn_accuracy(tr_x, tr_y, te_x, te_y, k, k=ec.k,
                                                     temperature=ec.temperature))}

  return run
