"""Moving MNIST frame prediction: 10 frames given, 10 predicted, against copy-last-frame.

Sequences are generated from the MNIST carve (aigc_jax/data/video.py): two digits bouncing in a
64x64 frame, 20 frames. Training draws an endless stream from the 7,000 training digits (never a
repeated sequence); validation and test are frozen sets of 10,000 sequences each from the held-out
validation and test digits. The predictors (variants, combined with "_"):
  simvp     (default) a SimVP-style translator of gated convolution blocks (models/simvp.py)
  convlstm  ConvLSTM (Shi et al. 2015), the field's deterministic baseline (models/convlstm.py)
  quick     the ten-minute budget; scores the first 1,000 test sequences instead of all 10,000

Commands:
  python -m aigc_jax.main --config=experiments/video_mnist.py:quick --workdir=DIR
  python -m aigc_jax.main --config=experiments/video_mnist.py:convlstm_quick --workdir=DIR
  python -m aigc_jax.main --config=experiments/video_mnist.py --workdir=DIR

The models get equal wall time, not equal steps: each one's steps are sized to its measured speed
on 2 CPU cores. Quick, first 1,000 test sequences (seed 0, 2-core Intel Xeon, jax 0.12.1, December
7 2026): SimVP test MSE 131.8 (SSIM 0.329, 7 min 53 s), ConvLSTM 137.6 (0.293, 8 min 34 s),
copy-last-frame 286.4 (0.654), mean of the given frames 187.3; one seed each. The default
(42 minutes each, all 10,000 test sequences) is not measured yet. summary.json: test_mse,
test_mae, test_ssim, test_psnr, the per-horizon test_mse_frame11 ... test_mse_frame20, and the
baselines' test_copy_last_mse, test_mean_frame_mse. Full results: docs/results.md, section
'Video prediction'. For orientation only, converged figures on the
official protocol (OpenSTL: 60,000 training digits, 200 epochs on a GPU): ConvLSTM MSE 46.26 /
SSIM 0.878, SimVP-gSTA 15.05 / 0.967.
"""

import ml_collections

from aigc_jax import config as config_lib

PARTS = ("quick", "simvp", "convlstm")


def model(name: str) -> dict:
  """Both sized for 2 CPU cores (OpenSTL's Moving MNIST models are ~10x wider)."""
  if name == "convlstm":
    # 4x4 patches, as OpenSTL folds Moving MNIST; two layers of 16 with 3x3 kernels instead of
    # four of 128 with 5x5 (0.72 s a step here; 32 features cost 2.3 s).
    return dict(name="convlstm", hidden=(16, 16), kernel_size=3, patch=4)
  # 3x3 convolutions mix the translator (SimVP's gated blocks): the large-kernel depthwise mixer
  # of gSTA costs 3x a block here (XLA:CPU's depthwise convolutions are slow).
  return dict(name="simvp", channels=16, hidden=128, blocks=2, patch=2, downsample=1,
              mixer="conv3x3")


# Steps per predictor and budget: equal wall time, 8 (quick) or 42 minutes of training at each
# model's speed in the trainer on 2 CPU cores at batch 16, measured back to back (SimVP 1.5
# steps a second, ConvLSTM 2.3-2.55; both vary by a third from day to day on this machine).
STEPS = {("simvp", True): 700, ("convlstm", True): 1_100,
         ("simvp", False): 3_700, ("convlstm", False): 5_800}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  chosen = config_lib.parts(arg, "video_mnist", PARTS)
  if {"simvp", "convlstm"} <= chosen:
    raise ValueError("video_mnist: pick one predictor, simvp or convlstm.")
  quick = "quick" in chosen
  name = "convlstm" if "convlstm" in chosen else "simvp"
  c = config_lib.get_config(task="video")
  c.model = ml_collections.ConfigDict(model(name))
  c.data.name = "mnist_idx"
  c.data.video.frames = 20
  c.data.preprocess = "value_range(0, 1, key='frames')|keep('frames')"
  c.data.batch_size = 16
  c.data.eval_batch_size = 100
  c.optim.update(name="adam", lr=1e-3, schedule="warmup_cosine", warmup_steps=50,
                 grad_clip_norm=1.0)
  c.train.num_steps = STEPS[(name, quick)]
  c.train.update(log_every_steps=20, eval_every_steps=c.train.num_steps // 2,
                 checkpoint_every_steps=100)
  config_lib.add_eval(c, "validation", "metrics", split="validation[:500]")
  config_lib.add_eval(c, "test", "video_prediction", every_steps=-1,
                      split="test[:1000]" if quick else "test")
  c.train.update(best_metric="validation_mse", best_mode="min")
  return c


if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
