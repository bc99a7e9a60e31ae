"""SimCLR on MNIST-1D, then few labels: the pretrain-then-transfer table beside the paper's
supervised table (Greydanus 2020).

  python -m experiments.transfer_mnist1d --workdir=DIR [--variant=quick]

Measured before the validation carve (2-core CPU, jax 0.12, 1 min 55 s for the whole command, one
run; test accuracy %, fine-tuning mean ± std over seeds 0-2):

  representation        probe  kNN   10/class     100/class    all
  raw sequences          32.0  50.5  20.1 ± 3.1   29.7 ± 0.8   31.3 ± 1.0
  1-d CNN from scratch   45.6  49.4  22.8 ± 3.0   67.8 ± 2.6   93.5 ± 1.5
  SimCLR-pretrained      88.9  86.7  53.6 ± 4.9   83.3 ± 1.2   93.5 ± 0.4

On the validation carve (3,500 training sequences; December 2026, 2-core AMD EPYC, jax 0.12.1):

  representation        probe  kNN   10/class     100/class    all
  raw sequences          31.4  49.4  21.1 ± 0.2   29.9 ± 0.9   31.3 ± 0.8
  1-d CNN from scratch   44.4  47.5  24.3 ± 0.4   70.6 ± 1.6   92.3 ± 0.4
  SimCLR-pretrained      81.3  79.9  44.2 ± 1.0   78.5 ± 1.1   91.7 ± 0.5

Full results and notes: docs/results.md, section 'Contrastive learning'.
"""

import ml_collections

from aigc_jax import config as config_lib
from experiments import mnist1d, simclr_mnist1d, transfer_mnist

ROWS = ("pixels", "random", "simclr")
NAMES = {"pixels": "raw sequences (40)", "random": "1-d CNN from scratch",
         "simclr": "1-d CNN, SimCLR-pretrained"}
CONVS = "Conv_0<-encoder/Conv_0, Conv_1<-encoder/Conv_1, Conv_2<-encoder/Conv_2"


def pretrain_config(rep: str, quick: bool) -> ml_collections.ConfigDict:
  del rep
  c = simclr_mnist1d.get_config(None if quick else "long")
  c.sweep = ()  # one pretraining run (seed 0) serves every labelled seed
  return c


def classifier_config(rep: str, labels: int, seed: int, init_workdir: str = "",
                      probe: bool = False) -> ml_collections.ConfigDict:
  c = mnist1d.get_config()
  c.sweep, c.seed = (), seed
  c.model = ml_collections.ConfigDict(
      dict(mnist1d.MODELS[0]) if rep == "pixels" else dict(mnist1d.MODELS[2]))
  c.data.labels_per_class = labels
  c.train.num_steps = {10: 300, 100: 600}.get(labels, 6000)
  c.train.update(eval_every_steps=100_000, checkpoint_every_steps=100_000,
                 progress_bar=True)
  if init_workdir:
    c.init.update(workdir=init_workdir, checkpoint="latest", map=CONVS)
  if probe:
    c.train.num_steps = 40  # one epoch for the head; the probes are exact
    fn = "input" if rep == "pixels" else "encode"
    if rep != "pixels":
      c.freeze = "^Conv_"
    config_lib.add_eval(c, "probe", "linear_probe", fn=fn, every_steps=-1)
    config_lib.add_eval(c, "knn", "knn", fn=fn, k=10, every_steps=-1)
  return c


MNIST1D = transfer_mnist.Table(
    rows=ROWS, pretrain=pretrain_config, pretrained=("simclr",), classifier=classifier_config,
    names=NAMES, title="MNIST-1D (1,000 test sequences)", knn_k=10)


if __name__ == "__main__":
  transfer_mnist.cli(MNIST1D, "quick: the notebook's 200 pretraining epochs.")
