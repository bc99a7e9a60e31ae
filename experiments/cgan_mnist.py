"""Class-conditional DCGAN on MNIST: a label embedding joins the generator's noise, and a
projection discriminator (Miyato & Koyama 2018) adds <embed(y), features> to its logit.

Otherwise the recipe of `experiments/dcgan_mnist.py` (non-saturating loss, Adam 2e-4, 0.5/0.999,
batch 64, generator EMA). The score that matters here is label agreement: the project classifier
judges 10,000 samples drawn for the ten labels in turn, and agrees with the label asked for.
Grids show one class per row.

  python -m experiments.cgan_mnist --workdir=/tmp/cgan                                   # GPU
  python -m aigc_jax.main --config=experiments/cgan_mnist.py:quick --workdir=/tmp/cgan_q  # CPU

Measured: see the table in README.md ("GANs on MNIST").
"""

import ml_collections

from experiments import dcgan_mnist


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return dcgan_mnist.gan_config("cgan_mnist", arg, num_classes=10)


if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
