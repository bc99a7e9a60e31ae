"""Flow matching on the MNIST carve: rectified flow (Liu et al. 2023; Lipman et al. 2023), the
straight path x_t = (1 - t) x0 + t eps, a U-Net regressing its velocity eps - x0, sampled by
integrating the flow ODE (Heun by default).

Commands (VARIANT: quick, cond_quick, cond; the default is unconditional):
  python -m aigc_jax.main --config=experiments/flow_mnist.py:VARIANT --workdir=DIR
  python -m aigc_jax.sample --workdir=DIR --sampler=euler --steps=20

The recipe, evaluators and U-Net are ddpm_mnist's; only the process and the target differ.

Measured: not yet (issue 24 is in progress; the figures go here and in docs/results.md).
"""

import ml_collections

from experiments import ddpm_mnist


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ddpm_mnist.mnist_config("flow_mnist", arg, ddpm_mnist.unet, process="flow",
                              prediction="velocity")
  c.sampler.name = "heun"
  return c


if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
