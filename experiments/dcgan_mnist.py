"""DCGAN on MNIST (Radford, Metz & Chintala 2016), non-saturating loss, scored with FID and IS.

Generator: dense to 7x7x256, transposed convolutions 128 (stride 1) and 64 (stride 2) with batch
norm and ReLU, tanh 28x28x1. Discriminator: strided convolutions 64 and 128 with LeakyReLU(0.2),
batch norm on the second, a dense logit. Adam 2e-4, betas 0.5/0.999 (the paper's), batch 64,
an exponential moving average of the generator (decay 0.999) for sampling.

Data: the local 8,000/2,000 carve-out of MNIST (`mnist_idx`, from $AIGC_JAX_DATA) by default;
`--config.data.name=mnist` (or `fashion_mnist`) for the tfds catalog data set.

Scores (aigc_jax/tasks/gan.py): FID and Inception Score with the project's own MNIST classifier
(`experiments.cnn_mnist`, trained once and cached if `evals.scores.classifier_workdir` is empty), next to
the real held-out split's values, and the class histogram of 10,000 samples. They compare runs of
this project with each other and with the real-data floor, not with papers' Inception-v3 FID.

Commands:
  python -m experiments.dcgan_mnist --workdir=/tmp/dcgan                                 # GPU
  python -m aigc_jax.main --config=experiments/dcgan_mnist.py:quick --workdir=/tmp/dcgan_q  # CPU

Measured (2-core CPU, one run, classifier cached; real data: IS 9.685, FID floor 1.338):
  quick (width 32, 6,000 steps x 32): 4 min 14 s, IS 7.57, FID 27.8, classes 7.0-15.7%.
  default (GPU): not measured, no GPU was lent. README.md ("GANs on MNIST") has the details.
"""

import ml_collections

from experiments import common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return gan_config("dcgan_mnist", arg)


def gan_config(name: str, arg: str | None, **model) -> ml_collections.ConfigDict:
  """The MNIST GAN recipe every GAN experiment starts from (default: GPU; quick: 2-core CPU)."""
  c = common.get_config(task="gan")  # evaluators: test, samples (grid), scores (FID/IS)
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
  c.train.best_metric = "scores_fid"
  c.train.best_mode = "min"
  if arg == "quick":  # 2-core CPU, one device (two were slower here), half widths; more,
    # smaller steps at a higher rate gave better digits in the same time (README).
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
