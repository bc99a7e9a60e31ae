"""Contrastive image-text pretraining on captioned MNIST compositions (CLIP, Radford et al. 2021;
SigLIP, Zhai et al. 2023), then zero-shot digit classification with prompts it never read.

Data: `mnist_captions/mnist` (one or two carve digits on a 56x56 canvas, a caption from a small
grammar; 3-with-8 and "7 below" compositions held out of training). A conv encoder (56 -> 7, 128-d)
and a bidirectional char transformer (2 x 64) embed images and captions into 64 dimensions;
InfoNCE across the global batch (`:sigmoid`: SigLIP's pairwise sigmoid loss instead).

Commands (VARIANT: quick, sigmoid, sigmoid_quick; the default is the softmax loss):
  python -m aigc_jax.main --config=experiments/clip_mnist.py:VARIANT --workdir=DIR

Evaluators: zero-shot accuracy on the 2,000 test digits (centred, alone) with templates absent
from the caption grammar ("a photo of the digit three"), each template alone and ensembled, and
with the grammar's own phrases for comparison; the linear probe on the image encoder (trained on
the 7,000 training digits) as its upper bound; image <-> caption retrieval recall@1/5 on the test
pairs and on the held-out compositions. Choices read the validation splits; test is reported.

Measured (`quick`, 600 steps of batch 256; 2-core Intel Xeon, jax 0.12.1, seed 0, one run, idle,
December 7 2026): zero-shot on the test digits 73.7% with the unseen templates (each alone 72.8 /
60.2 / 80.3%), 94.0% with the grammar's phrases; linear probe 97.2%; retrieval R@1 image -> text
55.5%, text -> image 66.2% (held-out compositions 57.1% / 43.7%); 4 min 23 s. Misses issue 25's
zero-shot target (>= 90%, within 5 points of the probe). The default (3,000 steps, same machine,
idle): zero-shot 84.3% unseen templates (80.9 / 68.6 / 77.3%), 92.4% seen phrasing, probe
96.9%, retrieval R@1 57.0% / 65.1% (held out 58.2% / 34.3%), 17 min 49 s; still short.
Full results and notes: docs/results.md, section 'Image and text'.
"""

import ml_collections

from aigc_jax import config as config_lib

VARIANTS = ("", "quick", "sigmoid", "sigmoid_quick")
NUMBERS = tuple(f"{d}|{w}" for d, w in enumerate(
    "zero one two three four five six seven eight nine".split()))
# Never produced by the caption grammar (mnist_captions.py): zero-shot's prompts.
UNSEEN = ("a photo of the digit {}", "a handwritten {}", "an image showing {}")
SEEN = ("the digit {}", "the number {}")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = config_lib.variant(arg, "clip_mnist", VARIANTS)
  quick = "quick" in arg
  c = config_lib.get_config(task="image_text")
  c.image_text.loss = "sigmoid" if arg.startswith("sigmoid") else "softmax"
  c.model = ml_collections.ConfigDict({
      "name": "clip", "embed_dim": 64, "pooling": "mean",
      "image": {"name": "encoder_classifier",
                "encoder": {"kind": "conv", "hidden": (32, 64, 64), "latent_dim": 128}},
      "text": {"num_layers": 2, "num_heads": 4, "width": 64, "block_size": 64, "causal": False},
  })
  c.data.update(name="mnist_captions/mnist", tokenizer="char", packing="examples",
                text_key="caption", tokens_key="caption", seq_len=64, truncate=False,
                preprocess="value_range(0, 1)|rename(image='input')",
                batch_size=256, eval_batch_size=500, eval_split="validation")
  c.optim.update(name="adamw", lr=1e-3, weight_decay=0.1, schedule="warmup_cosine",
                 warmup_steps=100, grad_clip_norm=1.0)
  c.train.num_steps = 600 if quick else 3_000
  c.train.update(log_every_steps=50, eval_every_steps=c.train.num_steps // 3,
                 checkpoint_every_steps=500)
  # Validation (choices), every eval_every_steps: zero-shot on the validation digits.
  config_lib.add_eval(c, "val_zero_shot", "zero_shot", split="validation_digits",
                      templates=UNSEEN, classes=NUMBERS)
  # Test (reported), after the last step only.
  end = dict(every_steps=-1)
  config_lib.add_eval(c, "zero_shot", "zero_shot", split="test_digits", templates=UNSEEN,
                      classes=NUMBERS, **end)
  config_lib.add_eval(c, "zero_shot_seen", "zero_shot", split="test_digits", templates=SEEN,
                      classes=NUMBERS, **end)
  config_lib.add_eval(c, "probe", "linear_probe", split="test_digits",
                      train_split="train_digits", **end)
  config_lib.add_eval(c, "retrieval", "retrieval", split="test", **end)
  config_lib.add_eval(c, "retrieval_novel", "retrieval", split="test_novel", **end)
  return c


if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
