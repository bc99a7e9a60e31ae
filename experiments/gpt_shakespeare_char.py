"""Character-level GPT on tiny Shakespeare: nanoGPT's `train_shakespeare_char`, side by side.

Reference: nanoGPT's train_shakespeare_char (default: 6 layers, width 384, context 256) and its
CPU configuration (`quick`: 4 layers, width 128, context 64, 2,000 steps); `fast` keeps quick's
size with modded-nanogpt's recipe (rotary, ReLU^2, QK-norm, Muon, WSD ...; 260 steps).

Commands (need $AIGC_JAX_DATA with tinyshakespeare/; VARIANT: quick, fast, quick_prune50/80):
  python -m experiments.gpt_shakespeare_char --workdir=DIR
  python -m aigc_jax.main --config=experiments/gpt_shakespeare_char.py:VARIANT --workdir=DIR
  python -m aigc_jax.sample --workdir=DIR --prompt="ROMEO:" --max_new_tokens=500

Measured (2-core AMD EPYC CPU, jax 0.12.1; test loss on the whole test split, nanoGPT's validation
text; trained on the 953,662 characters before the validation split; seeds 0-2,
benchmarks/gpt_recipe.py): `quick` 1.952 ± 0.006, `fast` 1.923 ± 0.003; nanoGPT's CPU recipe on
the same characters 1.947 ± 0.007 (on its own 5% more text 1.901 ± 0.004). Wall times: see
docs/results.md (measured before the split change: nanoGPT 68.1 s, `quick` 70.5 s, `fast` 21.0 s;
again in December 2026 on the same kind of machine, slower that day, alternated, median of 3:
`quick` 112.8 s, nanoGPT 107.3 s; the step itself 39.9 ms against nanoGPT's 47.3 ms).
The default (H100): not measured.

Full results and notes: docs/results.md, sections 'GPT on tiny Shakespeare' and 'Faster GPT'
(the pruned variants: docs/compression.md, section 'Pruning').
"""

import ml_collections

from aigc_jax import config as config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = config_lib.get_config(task="lm")  # evaluators: samples (text); validation added below
  c.model = ml_collections.ConfigDict(dict(
      name="gpt", vocab_size=0, block_size=256, num_layers=6, num_heads=6, width=384,
      dropout=0.2, tie_embeddings=True, use_bias=False, attention_impl="", dtype="",
      position="learned"))
  c.data.update(name="text_files/tinyshakespeare", tokenizer="char", seq_len=256,
                packing="windows", batch_size=64, eval_split="test", eval_batch_size=256)
  c.optim.update(name="adamw", lr=1e-3, b1=0.9, b2=0.99, weight_decay=0.1,
                 schedule="warmup_cosine", warmup_steps=100, min_lr_ratio=0.1,
                 grad_clip_norm=1.0)
  c.train.update(num_steps=5000, log_every_steps=50, eval_every_steps=250,
                 checkpoint_every_steps=250, best_metric="validation_loss", best_mode="min")
  # Choices (the best/ checkpoint) on validation, the end of nanoGPT's training text; the
  # reported loss on test, nanoGPT's validation text, after the last step.
  config_lib.add_eval(c, "validation", "metrics", split="validation")
  config_lib.add_eval(c, "test", "metrics", every_steps=-1)
  if arg in ("quick", "quick_prune50", "quick_prune80"):
    c.model.update(block_size=64, num_layers=4, num_heads=4, width=128, dropout=0.0)
    c.data.update(seq_len=64, batch_size=12)
    c.cpu_devices = 2  # data parallel over the 2 cores of the reference CPU machine
    c.train.update(num_steps=2000, eval_every_steps=250, checkpoint_every_steps=250)
  if arg in ("quick_prune50", "quick_prune80"):
    # Magnitude pruning of the block matrices (not embeddings), half the target at step 1000,
    # all of it at 1500, retraining under the same cosine decay.
    s = {"quick_prune50": 0.5, "quick_prune80": 0.8}[arg]
    c.prune.update(enabled=True, rounds=((1000, s / 2), (1500, s)), scope="global",
                   params=r"block[^/]*/.*kernel$")
  elif arg == "fast":
    fast(c)
  elif arg and arg not in ("quick", "quick_prune50", "quick_prune80"):
    raise ValueError(f"Unknown variant {arg!r} of gpt_shakespeare_char; valid: quick, fast, "
                     "quick_prune50, quick_prune80, or none.")
  return c


def fast(c) -> None:
  """`quick`'s model size and data, the modern recipe (docs/results.md, "Faster GPT"): reach
  quick's quality in a fraction of its wall time."""
  c.model.update(block_size=64, num_layers=4, num_heads=4, width=128, dropout=0.0,
                 position="rotary", norm="rms", mlp="relu2", qk_norm=True, zero_init=True,
                 tie_embeddings=False, logit_softcap=15.0, value_residual=True, x0_skip=True,
                 unet_skips=True)
  c.data.update(seq_len=64, batch_size=16)
  c.cpu_devices = 2
  c.optim.update(name="muon", lr=0.01, adam_lr=1e-2, b1=0.9, b2=0.99, weight_decay=0.0,
                 muon_ns_steps=3, schedule="wsd", warmup_steps=40, cooldown_fraction=0.6,
                 min_lr_ratio=0.0, grad_clip_norm=0.0)
  # One evaluation, at the end: the whole validation split and a sample.
  c.train.update(num_steps=260, eval_every_steps=260, checkpoint_every_steps=130)


if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
