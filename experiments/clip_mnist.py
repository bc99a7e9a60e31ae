"""Contrastive image-text pretraining on captioned MNIST compositions (CLIP, Radford et al. 2021;
SigLIP, Zhai et al. 2023), then zero-shot digit classification with prompts it never read.

Data: `mnist_captions/mnist` (one or two carve digits on a 56x56 canvas, a caption from a small
grammar; 3-with-8 and "7 below" compositions held out of training). A conv encoder (56 -> 7, 128-d)
and a causal char transformer (2 x 64, read at the caption's last token, as CLIP's) embed images
and captions into 64 dimensions; InfoNCE across the global batch (`sigmoid`: SigLIP's pairwise
sigmoid loss instead; `negatives`: each caption's hard negative, its digits swapped, joins the
batch's captions).

Commands (VARIANT: parts quick, sigmoid, negatives joined by "_"; the default is the softmax
loss, 3,000 steps):
  python -m aigc_jax.main --config=experiments/clip_mnist.py:VARIANT --workdir=DIR
  python -m aigc_jax.tools.evaluate --workdir=DIR --evals=retrieval \
      --set=data.text_key=caption,negative --set=data.tokens_key=caption,negative \
      --set=image_text.negatives=negative    # does the text tower read word order?

Evaluators: zero-shot accuracy on the 2,000 test digits (centred, alone) with templates absent
from the caption grammar ("a photo of the digit three"), each template alone and ensembled, and
with the grammar's own phrases for comparison; the linear probe on the image encoder (trained on
the 7,000 training digits) as its upper bound; image <-> caption retrieval recall@1/5 on the
test pairs and on the held-out compositions, and with the negatives tokenised, how often a
two-digit image prefers its caption to the swapped one (`negative_accuracy`: 50% is a bag of
words). Choices read the validation splits; test is reported.

Measured (2-core Intel Xeon, jax 0.12.1, seed 0, one run each, idle, December 7 2026; test):
- `quick` (600 steps of batch 256): zero-shot 81.8% with the unseen templates (each alone 87.9 /
  71.2 / 71.5%), 93.9% with the grammar's phrases; linear probe 97.1%; retrieval R@1 image ->
  text 58.9%, text -> image 68.2%; 4 min 17 s. The bidirectional, mean-pooled tower it replaced:
  73.7% (validation 73.8% against 81.7%, the choice).
- default (3,000 steps): zero-shot 83.8% (76.6 / 83.2 / 74.2%), seen phrasing 93.0%, probe
  96.5%, retrieval R@1 79.5% / 87.0% (held out 72.0% / 52.6%), and it reads word order: 90.9%
  of test pairs prefer their caption to the swapped one (the mean-pooled tower: 57.6%, chance
  on pure swaps); 19 min 13 s.
Both miss issue 25's zero-shot target (>= 90%, within 5 points of the probe).
Full results and notes: docs/results.md, section 'Image and text'.
"""

import ml_collections

from aigc_jax import config as config_lib

PARTS = ("quick", "sigmoid", "negatives")  # joined by "_": sigmoid_quick, negatives_quick
NUMBERS = tuple(f"{d}|{w}" for d, w in enumerate(
    "zero one two three four five six seven eight nine".split()))
# Never produced by the caption grammar (mnist_captions.py): zero-shot's prompts.
UNSEEN = ("a photo of the digit {}", "a handwritten {}", "an image showing {}")
SEEN = ("the digit {}", "the number {}")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  chosen = config_lib.parts(arg, "clip_mnist", PARTS)
  quick = "quick" in chosen
  c = config_lib.get_config(task="image_text")
  c.image_text.loss = "sigmoid" if "sigmoid" in chosen else "softmax"
  c.model = ml_collections.ConfigDict({
      "name": "clip", "embed_dim": 64, "pooling": "last",
      "image": {"name": "encoder_classifier",
                "encoder": {"kind": "conv", "hidden": (32, 64, 64), "latent_dim": 128}},
      # CLIP's text tower: causal, read at the last token (chosen on the validation digits:
      # 81.7% zero-shot against 73.8% for a bidirectional one averaged over its tokens).
      "text": {"num_layers": 2, "num_heads": 4, "width": 64, "block_size": 64, "causal": True},
  })
  c.data.update(name="mnist_captions/mnist", tokenizer="char", packing="examples",
                text_key="caption", tokens_key="caption", seq_len=64, truncate=False,
                preprocess="value_range(0, 1)|rename(image='input')",
                batch_size=256, eval_batch_size=500, eval_split="validation")
  if "negatives" in chosen:  # each caption's hard negative, its digits swapped
    c.data.update(text_key="caption,negative", tokens_key="caption,negative")
    c.image_text.negatives = "negative"
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
