"""SimCLR on the MNIST carve with the autoencoders' encoder, for the transfer table.

SimCLR's NT-Xent on two views per image (crop, rotation, noise) trains `ae_mnist`'s 784-500-20
MLP encoder; its 20-d code is the representation.

Commands:
  python -m experiments.simclr_mnist --workdir=DIR
  python -m aigc_jax.main --config=experiments/simclr_mnist.py:quick --workdir=DIR

Measured (2-core CPU, jax 0.12.1, one run each, 7,000-image carve): default probe 94.0%, kNN 93.3%
(2 min 12 s when it trained on 8,000 images);
quick probe 92.7%, kNN 91.9%, 48 s. In the transfer table (experiments/transfer_mnist.py) its
encoder gives 77.7 ± 2.4% with 10 labels per class against 74.6 ± 2.5% from scratch.

Full results and notes: docs/results.md, section 'Contrastive learning'.
"""

import ml_collections

from aigc_jax import config as config_lib
from experiments import ae_mnist

AUGMENT = ("views(2)|random_resized_crop(scale=(0.4, 1.0))|rotate(15)|"
           "gaussian_noise(0.1, clip=(0.0, 1.0))")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  chosen = ae_mnist.variants(arg, "simclr_mnist")
  c = config_lib.get_config(task="contrastive")
  encoder = dict(kind="mlp", hidden=(500,), latent_dim=20, variational=False)
  c.model = ml_collections.ConfigDict({
      "name": "contrastive", "projector": (128, 128),
      "backbone": {"name": "encoder_classifier", "encoder": encoder}})
  c.contrastive.update(temperature=0.5, negatives="all")
  c.augment = AUGMENT
  ae_mnist.mnist(c, 10.0 if "quick" in chosen else 30.0)
  c.data.batch_size = 256
  ae_mnist.representation_evals(c)
  config_lib.add_eval(c, "views", "augment_grid", every_steps=-1)
  return c


if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
