"""Moving MNIST frame prediction: 10 frames given, 10 predicted, against copy-last-frame.

Sequences are generated from the MNIST carve (aigc_jax/data/video.py): two digits bouncing in a
64x64 frame, 20 frames. Training draws an endless stream from the 7,000 training digits (never a
repeated sequence); validation and test are frozen sets of 10,000 sequences each from the held-out
validation and test digits. The predictors (variants, combined with "_"):
  simvp     (default) a SimVP-style translator of gated convolution blocks (models/simvp.py)
  convlstm  ConvLSTM (Shi et al. 2015), the field's deterministic baseline (models/convlstm.py)
  diffusion stochastic futures: the diffusion task with a U-Net denoising the 10 future frames
            as channels given the 10 past ones (tasks/video.py objective "diffusion"); test
            scores 10 draws per past (best-of-1/5/10 MSE, their spread)
  quick     the ten-minute budget; scores the first 1,000 test sequences instead of all 10,000

Commands:
  python -m aigc_jax.main --config=experiments/video_mnist.py:quick --workdir=DIR
  python -m aigc_jax.main --config=experiments/video_mnist.py:convlstm_quick --workdir=DIR
  python -m aigc_jax.main --config=experiments/video_mnist.py:diffusion_quick --workdir=DIR
  python -m aigc_jax.main --config=experiments/video_mnist.py --workdir=DIR

The models get equal wall time, not equal steps: each one's steps are sized to its measured speed
on 2 CPU cores. Quick, first 1,000 test sequences (seed 0, 2-core Intel Xeon, jax 0.12.1, December
7 2026): SimVP test MSE 131.8 (SSIM 0.329, 7 min 53 s), ConvLSTM 137.6 (0.293, 8 min 34 s),
copy-last-frame 286.4 (0.654), mean of the given frames 187.3; with seed 1 (December 8)
SimVP 133.3 and ConvLSTM 137.3, so over seeds 0-1 SimVP 132.6 ± 0.7 against ConvLSTM
137.4 ± 0.1. The default (42 minutes each, all 10,000 test sequences) is not measured yet. summary.json: test_mse,
test_mae, test_ssim, test_psnr, the per-horizon test_mse_frame11 ... test_mse_frame20, and the
baselines' test_copy_last_mse, test_mean_frame_mse.

diffusion_quick (600 steps; first 100 test clips, 10 draws each; seed 0, 2-core AMD EPYC, December
8 2026): best-of-1 MSE 177.9, best-of-5 160.7, best-of-10 155.3, the draws' mean 139.2, spread
39.3, SSIM of a draw 0.427, copy-last-frame 284.3 on the same clips, 8 min 58 s. summary.json adds
test_best_of_1_mse ... test_best_of_10_mse, test_spread_mse and test_ensemble_mse; validation
scores the diffusion loss (validation_loss). The default (6,000 steps, first 1,000 test clips)
is not measured yet. Full results: docs/results.md, section 'Video prediction'. For
orientation only, converged figures on the official protocol (OpenSTL: 60,000 training digits,
200 epochs on a GPU): ConvLSTM MSE 46.26 / SSIM 0.878, SimVP-gSTA 15.05 / 0.967.
"""

import ml_collections

from aigc_jax import config as config_lib

PARTS = ("quick", "simvp", "convlstm", "diffusion")


def model(name: str) -> dict:
  """Both sized for 2 CPU cores (OpenSTL's Moving MNIST models are ~10x wider)."""
  if name == "diffusion":
    # 4x4 patches: 16x16 positions of 20 frames x 16 pixels, as the predictors fold them.
    return dict(name="unet", image_size=64, channels=10, cond_channels=10, patch=4, width=64,
                multipliers=(1, 2, 2), num_res_blocks=1, attention_at=(4,), heads=4, groups=8,
                dropout=0.0)
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
         ("simvp", False): 3_700, ("convlstm", False): 5_800,
         ("diffusion", True): 600, ("diffusion", False): 6_000}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  chosen = config_lib.parts(arg, "video_mnist", PARTS)
  if len(chosen & {"simvp", "convlstm", "diffusion"}) > 1:
    raise ValueError("video_mnist: pick one predictor, simvp, convlstm or diffusion.")
  quick = "quick" in chosen
  name = next((n for n in ("convlstm", "diffusion") if n in chosen), "simvp")
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
  if name == "diffusion":
    c.video.objective = "diffusion"
    c.diffusion.update(process="vp", schedule="cosine", prediction="x0", ema_decay=0.995)
    c.sampler.update(name="dpm++2m", steps=20)
    # Validation scores the diffusion loss (sampling 10 futures a clip is the test's job).
    c.evals.validation.update(fn="objective")
    c.train.best_metric = "validation_loss"
    # 10 draws of 20 sampler steps a clip: 100 clips cost 2.5 minutes here.
    c.evals.test.update(futures=3, split="test[:100]" if quick else "test[:1000]")
  return c


if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
