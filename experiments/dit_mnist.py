"""A diffusion transformer on the MNIST carve: DiT (Peebles & Xie 2023) with adaLN-Zero blocks
over 4x4 patches (49 tokens), noise prediction on the cosine schedule.

Commands (VARIANT: quick, cond_quick, cond; the default is unconditional):
  python -m aigc_jax.main --config=experiments/dit_mnist.py:VARIANT --workdir=DIR

The recipe and evaluators are ddpm_mnist's; only the backbone differs.

Measured: not yet (issue 24 is in progress; the figures go here and in docs/results.md).
"""

import ml_collections

from experiments import ddpm_mnist


def dit(quick: bool) -> dict:
  return dict(name="dit", image_size=28, channels=1, patch=4, width=96 if quick else 192,
              depth=4 if quick else 8, num_heads=4 if quick else 6)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return ddpm_mnist.mnist_config("dit_mnist", arg, dit)


if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
