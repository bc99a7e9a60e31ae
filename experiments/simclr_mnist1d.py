"""SimCLR on MNIST-1D: the `mnist1d` repository's self-supervised recipe, reproduced, then tuned.

Reference (the mnist1d repository's self-supervised-learning notebook, Greydanus 2020): the
paper's 1-d CNN without its head as the encoder (3 stride-2 convolutions of 25 channels, kernels
5, 3, 3 -> a 125-d representation), a 125-125-16 projector, temperature 0.5, Adam 1e-2, batch
100, 200 epochs of the 4,000 training sequences. Augmentations, each view independently: remove
the mean and linear trend, circular shift by 0-9 steps, add a random slope ~ N(0, 0.04^2) and
offset ~ N(0, 0.3^2). The loss contrasts view 1 with view 2 only ("cross_view"). It reports a
linear probe of 82.1% on the representation and kNN (k=10, cosine) of 74.1% on the projection;
raw sequences: 32.8% linear, 59.6% kNN (Euclidean).

Evaluators (after the last step): `probe` (linear probe of the representation; the L2 weight
chosen on a tenth of the training split), `knn` (k=10, cosine, on the projection, as the
notebook), `knn_h` (on the representation), `pixels` / `pixels_knn` (the raw sequences).

Commands (each runs seeds 0, 1, 2 and writes DIR/summary.md with the mean and spread):
  python -m experiments.simclr_mnist1d --workdir=DIR                    # the notebook's recipe
  python -m aigc_jax.main --config=experiments/simclr_mnist1d.py:long --workdir=DIR
  python -m aigc_jax.main --config=experiments/simclr_mnist1d.py:quick --workdir=DIR

Measured (2-core CPU, jax 0.12; test split, mean ± std over seeds 0-2; whole command, one run):
  default (200 epochs):  probe 84.0 ± 1.8, kNN(Z) 76.7 ± 4.0, kNN(H) 80.8 ± 2.4; 36 s.
                         The notebook's single run: 82.1 and 74.1. Its loss at 200 epochs, 2.88,
                         is ours too (seed 0).
  long (800 epochs):     probe 87.1 ± 2.4 (88.9, 84.4, 88.1), kNN(Z) 81.6 ± 5.1; 107 s.
  quick (50 epochs):     probe 79.5 ± 1.4, kNN(Z) 68.2 ± 3.0; 19 s.
  raw sequences:         probe 32.0 (the notebook: 32.8), kNN cosine 50.5 (its 59.6 is Euclidean).
What did not beat the notebook's recipe at 200 epochs (3 seeds each, probe): SimCLR's full
NT-Xent with 2B - 2 negatives 84.0 ± 2.9, plus a cosine schedule 81.6, temperature 0.2 77.5 or 1.0
82.4, shifts both ways 82.0, Gaussian noise 0.1 78.7, Adam 3e-3 77.4, batch 200 (400 epochs)
81.4. Training longer did: the loss still falls after 200 epochs (2.88 -> 2.84 at 800) and the
probe rises with it (400 epochs: 85.3 ± 3.1; 800: 87.1 ± 2.4).
"""

import ml_collections

from experiments import common

AUGMENT = "views(2)|detrend|circular_shift(10)|random_slope_offset(0.04, 0.3)"


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = common.get_config(task="contrastive")
  c.model = ml_collections.ConfigDict({
      "name": "contrastive", "projector": (125, 16), "weight_init": "torch",
      "backbone": {"name": "cnn1d", "channels": 25, "kernel_sizes": (5, 3, 3),
                   "weight_init": "torch"}})
  c.contrastive.update(temperature=0.5, negatives="cross_view")
  c.augment = AUGMENT
  c.data.name = "mnist1d"
  c.data.preprocess = "rename(x='input')"
  c.data.batch_size = 100
  c.data.eval_batch_size = 500
  c.optim.name = "adam"
  c.optim.lr = 1e-2
  c.train.update(num_epochs=200.0, log_every_steps=200, eval_every_steps=2000,
                 checkpoint_every_steps=2000)
  c.mesh.data = 1  # a tiny model: one device is fastest
  common.add_eval(c, "probe", "linear_probe", every_steps=-1)
  common.add_eval(c, "knn", "knn", fn="project", k=10)
  common.add_eval(c, "knn_h", "knn", k=10, every_steps=-1)
  common.add_eval(c, "pixels", "linear_probe", fn="input", every_steps=-1)
  common.add_eval(c, "pixels_knn", "knn", fn="input", k=10, every_steps=-1)
  c.train.update(best_metric="probe_accuracy", best_mode="max", keep_best_checkpoint=False)
  c.sweep = (("seed", (0, 1, 2)),)  # the table: mean ± std over three seeds
  if arg == "quick":
    c.train.num_epochs = 50.0
  elif arg == "long":  # the same recipe trained 4x longer: its loss is still falling at 200
    c.train.update(num_epochs=800.0, eval_every_steps=8000, checkpoint_every_steps=8000)
  elif arg:
    raise ValueError(f"Unknown variant {arg!r} of simclr_mnist1d; valid: quick, long, or none.")
  return c


if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
