"""Linear probe: multinomial logistic regression on frozen features of a labelled train split,
accuracy on the evaluated split (probe_lib.linear_probe: standardised features, L-BFGS in JAX,
the L2 weight chosen on a held-out tenth of the train split, never on the test split).

`fn` names the task's feature function ("encode"), or "input" for the raw-pixel baseline.
"""

from aigc_jax.evaluators import _features, probe_lib

DEFAULTS = {
    "fn": "encode",
    "train_split": "",  # the probe's training examples; "": data.train_split
    "num_classes": 0,  # 0: 1 + the largest label
    "l2_grid": (1e-5, 1e-4, 1e-3, 1e-2, 1e-1),
    "augment": "",  # applied to both splits with a fixed key (e.g. "binarize")
}


def make(name, ec, ctx):
  extract = _features.make_extractor(name, ec, ctx)

  def run(variables, step, rng):
    del step, rng
    tr_x, tr_y, te_x, te_y, k = extract(variables)
    out = probe_lib.linear_probe(tr_x, tr_y, te_x, te_y, k, l2_grid=tuple(ec.l2_grid))
    return {key: float(v) for key, v in out.items() if v is not None}

  return run
