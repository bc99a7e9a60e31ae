"""Character-level masked language model on tiny Shakespeare, beside `gpt_shakespeare_char`.

The same network, data and budget as gpt_shakespeare_char, with the causal mask removed
(`model.causal=False`) and the `mlm` objective: 15% of the characters selected, 80% of those
replaced by `<|mask|>` (id 65, added after the 65 characters), 10% by a random character, 10%
kept; cross-entropy on the selected ones. Default = gpt_shakespeare_char's default (6 layers,
width 384, context 256, 5,000 steps, for an accelerator); `quick` = its quick variant (4 layers,
4 heads, width 128, context 64, batch 12, 2,000 steps; 2 CPU devices).

Command (needs $AIGC_JAX_DATA with tinyshakespeare/):
  python -m experiments.mlm_shakespeare_char --workdir=DIR \
      [--config=experiments/mlm_shakespeare_char.py:quick]
The `validation` evaluator reports masked-token loss and accuracy over every character of the
validation split; DIR/samples/ holds a fill-in-the-blanks demo per evaluation; DIR/tokenizer.json
(mask token included) is what fine-tuning runs read (experiments/speakers_shakespeare_char.py).
"""

import ml_collections

from experiments import common, gpt_shakespeare_char


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  base = gpt_shakespeare_char.get_config(arg)  # the same sizes, data and budget
  c = common.get_config(task="mlm")
  for key in ("model", "data", "optim", "train", "cpu_devices"):
    c[key] = base[key]
  c.model.update(causal=False, position="rotary")
  c.train.best_metric = "validation_loss"
  common.add_eval(c, "validation", "metrics")
  return c


if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
