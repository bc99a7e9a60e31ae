"""DCGAN on MNIST (Radford, Metz & Chintala 2016), non-saturating loss, scored with FID and IS.

FID and IS use the project's own MNIST classifier (`experiments.cnn_mnist`), not Inception-v3:
they compare runs of this project with each other and with the real-data floor, not with papers.

Commands:
  python -m experiments.dcgan_mnist --workdir=DIR                                 # GPU
  python -m aigc_jax.main --config=experiments/dcgan_mnist.py:quick --workdir=DIR  # CPU

Measured (2-core CPU, jax 0.12, one run, classifier cached; real data: IS 9.685, FID floor 1.338):
  quick (width 32, 6,000 steps x 32): 4 min 14 s, IS 7.57, FID 27.8, classes 7.0-15.7%.
  default (GPU): not measured, no GPU was lent.

Full results and notes: docs/results.md, section 'GANs on MNIST'.
"""

import ml_collections

from aigc_jax import config as config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return gan_config("dcgan_mnist", arg)


def gan_config(name: str, arg: str | None, **model) -> ml_collections.ConfigDict:
  """The MNIST GAN recipe every GAN experiment starts from (default: GPU; quick: 2-core CPU)."""
  c = config_lib.get_config(task="gan")  # evaluators: test, samples (grid), scores (FID/IS)
  c.model = ml_collections.ConfigDict(
      {"name": "dcgan", "image_size": 28, "channels": 1, "width": 64, "latent_dim": 100, **model})
  c.data.name = "mnist_idx"
  c.data.preprocess = "value_range(-1, 1)|rename(image='input')"
  c.data.batch_size = 64
  c.data.eval_batch_size = 1000
  c.optim.name = "adam"
  c.optim.lr = 2e-4
  c.optim.b1 = 0.5
  c.optim.b2 = 0.999
  c.train.num_steps = 10_000
  c.train.log_every_steps = 100
  c.train.eval_every_steps = 2_000
  c.train.checkpoint_every_steps = 2_000
  # FID compares samples with the training split's statistics; its held-out split (the floor,
  # and how many samples "fid" scores) is validation, since the best/ checkpoint is chosen on it.
  c.evals.scores.split = "validation"
  c.train.best_metric = "scores_fid"
  c.train.best_mode = "min"
  if arg == "quick":  # 2-core CPU, one device (two were slower here), half widths; more,
    # smaller steps at a higher rate gave better digits in the same time (docs/results.md).
    c.model.width = 32
    c.data.batch_size = 32
    c.optim.lr = 3e-4
    c.train.num_steps = 6_000
    c.train.log_every_steps = 100
    c.train.eval_every_steps = 3_000
    c.train.checkpoint_every_steps = 1_000
    c.gan.ema_decay = 0.99
  elif arg:
    raise ValueError(f"Unknown variant {arg!r} of {name}; valid: quick, or none.")
  return c


if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
