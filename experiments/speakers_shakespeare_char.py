"""Who speaks this line? Fine-tuning a masked LM, a GPT, or the same network from scratch.

Pretraining: `gpt_shakespeare_char:quick` and `mlm_shakespeare_char:quick`; then classifying the
lines of `speakers/tinyshakespeare` (the 10 speakers with the most speeches) by their speaker.

  python -m experiments.speakers_shakespeare_char --workdir=DIR [--variant=quick]

Measured (2-core AMD EPYC, jax 0.12.1, after the validation carve; test accuracy %, fine-tuning
mean ± std over seeds 0-2; chance 10%; 66 min 26 s with other jobs sharing the cores, `quick`
6 min 51 s on the idle machine):

  representation                           probe  kNN   50/class     all (~500/class)
  from scratch (bidirectional)             21.2   16.1  12.9 ± 1.2   19.8 ± 1.5
  GPT (causal), fine-tuned                 23.8   17.0  15.5 ± 0.7   25.5 ± 0.6
  masked LM (bidirectional), fine-tuned    22.5   14.3  13.4 ± 1.0   25.7 ± 0.0

Full results and notes: docs/results.md, section 'Speaker classification'.
"""

import os

import ml_collections

from aigc_jax import config as config_lib
from aigc_jax.data import tokenizers
from experiments import gpt_shakespeare_char, mlm_shakespeare_char, transfer_mnist

ROWS = ("random", "gpt", "mlm")
NAMES = {"random": "from scratch (bidirectional)", "gpt": "GPT (causal), fine-tuned",
         "mlm": "masked LM (bidirectional), fine-tuned"}
PRETRAIN = {"gpt": gpt_shakespeare_char, "mlm": mlm_shakespeare_char}
NUM_LINES = 5027  # training lines (speakers/tinyshakespeare, default options)


def pretrain_config(rep: str, quick: bool) -> ml_collections.ConfigDict:
  c = PRETRAIN[rep].get_config("quick")
  c.model.position = "rotary"  # as the masked LM's, so the two networks differ only in the mask
  if quick:
    c.train.update(num_steps=500, eval_every_steps=250, checkpoint_every_steps=250)
  return c


def classifier_config(rep: str, labels: int, seed: int, init_workdir: str = "",
                      probe: bool = False) -> ml_collections.ConfigDict:
  base = gpt_shakespeare_char.get_config("quick").model
  c = config_lib.get_config(task="classify")
  c.seed = seed
  c.cpu_devices = 2
  encoder = {k: base[k] for k in ("block_size", "num_layers", "num_heads", "width", "use_bias")}
  encoder.update(causal=rep == "gpt", dropout=0.0, position="rotary")
  c.model = ml_collections.ConfigDict({"name": "text_classifier", "encoder": encoder,
                                       "vocab_size": 0, "num_classes": 10, "dropout": 0.1})
  c.data.update(name="speakers/tinyshakespeare", tokenizer=os.path.join(
      init_workdir, tokenizers.WORKDIR_FILE), packing="examples", seq_len=64, batch_size=64,
                eval_batch_size=512, labels_per_class=labels)
  examples = labels * 10 if labels else NUM_LINES
  steps = max(200, 8 * examples // 64)
  c.optim.update(name="adamw", lr=5e-4, weight_decay=0.01, schedule="warmup_cosine",
                 warmup_steps=steps // 20, grad_clip_norm=1.0)
  c.train.update(num_steps=steps, eval_every_steps=100_000, checkpoint_every_steps=100_000,
                 log_every_steps=50)
  config_lib.add_eval(c, "test", "metrics")
  if init_workdir and rep != "random":
    c.init.update(workdir=init_workdir, checkpoint="latest", map="encoder<-")
  if probe:
    c.train.update(num_steps=20)  # the table reads the probes, exact on frozen features
    c.freeze = "^encoder/"
    config_lib.add_eval(c, "probe", "linear_probe", every_steps=-1)
    config_lib.add_eval(c, "knn", "knn", every_steps=-1)
  return c


SPEAKERS = transfer_mnist.Table(
    rows=ROWS, pretrain=pretrain_config, pretrained=tuple(PRETRAIN),
    classifier=classifier_config, names=NAMES, labels=(50, 0), borrows={"random": "mlm"},
    title="Tiny Shakespeare speakers (10 classes, 1,208 test lines)",
    quick={"labels": (50,), "seeds": (0,)})


if __name__ == "__main__":
  transfer_mnist.cli(SPEAKERS, "quick: 500 pretraining steps instead of 2,000, fine-tuning "
                     "with 50 labels per class and seed 0 only.")
