"""Character-level masked language model on tiny Shakespeare, beside `gpt_shakespeare_char`.

BERT-style masking (15% of the characters selected: 80% <|mask|>, 10% random, 10% kept) on the
network of gpt_shakespeare_char without its causal mask, with rotary positions.

Commands (need $AIGC_JAX_DATA with tinyshakespeare/):
  python -m experiments.mlm_shakespeare_char --workdir=DIR
  python -m aigc_jax.main --config=experiments/mlm_shakespeare_char.py:quick --workdir=DIR

Measured, `quick` on the 2-core CPU (jax 0.12.1, one run each; 15% of the test characters,
after the validation carve):
  rotary positions (this):    masked-character loss 1.560, accuracy 54.4% (1 min 18 s)
  learned positions (GPT's):  masked-character loss 2.382, accuracy 35.6%
The default (6 layers, width 384, 5,000 steps) is gpt_shakespeare_char's accelerator recipe;
it has not been measured (no accelerator was lent).

Full results and notes: docs/results.md, section 'Masked language modelling'.
"""

import ml_collections

from aigc_jax import config as config_lib
from experiments import gpt_shakespeare_char


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  base = gpt_shakespeare_char.get_config(arg)  # the same sizes, data and budget
  c = config_lib.get_config(task="mlm")
  for key in ("model", "data", "optim", "train", "cpu_devices"):
    c[key] = base[key]
  c.model.update(causal=False, position="rotary")
  c.train.best_metric = "validation_loss"
  config_lib.add_eval(c, "validation", "metrics", split="validation")
  config_lib.add_eval(c, "test", "metrics", every_steps=-1)
  return c


if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
