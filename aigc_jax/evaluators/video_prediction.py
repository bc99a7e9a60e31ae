"""Frame prediction over a whole split: the video task's metrics, their per-horizon curves as a
plot, and strips of a few sequences to look at.

Returns what `metrics` would (mse, mae, ssim, psnr, per horizon, and the copy-last-frame and
mean-frame baselines'); writes DIR/curves/NAME_horizon.png (MSE and SSIM against the frame
predicted, the model beside the baselines) and DIR/samples/NAME_step_N.png: per sequence the
given frames, the true future and the predicted future, one row each; a stochastic model
(video.objective "diffusion") draws `futures` rows of different futures for the same past.
"""

import os
import re

import jax
import numpy as np

from aigc_jax import evaluators, writers
from aigc_jax.errors import ConfigError
from aigc_jax.evaluators import grid, metrics

DEFAULTS = {"num": 4, "futures": 3, "augment": ""}  # sequences drawn as strips; draws each


def check(name, ec, config) -> None:
  if config.task != "video":
    raise ConfigError(f"evals.{name} (video_prediction) needs task 'video'; got {config.task!r}.")
  if not 0 <= ec.num <= ec.batch_size:
    raise ConfigError(f"evals.{name}.num={ec.num} must be in [0, batch_size={ec.batch_size}].")
  if ec.futures < 1:
    raise ConfigError(f"evals.{name}.futures={ec.futures} must be >= 1.")


def plot_horizons(result: dict, path: str) -> str:
  """MSE and SSIM per predicted frame: the model and each baseline, one line each."""
  plt = writers.pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
  for ax, metric in zip(axes, ("mse", "ssim")):
    for prefix, label in (("", "model"), ("copy_last_", "copy last frame"),
                          ("mean_frame_", "mean given frame")):
      pattern = re.compile(rf"^{prefix}{metric}_frame(\d+)$")
      points = sorted((int(m.group(1)), v) for k, v in result.items()
                      if (m := pattern.match(k)))
      if points:
        ax.plot(*zip(*points), marker="o", label=label)
    ax.set_xlabel("frame predicted")
    ax.set_ylabel(f"{metric.upper()} per frame" + (" (sum over pixels)" if metric == "mse" else ""))
    ax.grid(alpha=0.3)
  axes[0].legend()
  return writers.save_figure(fig, path)


def make(name, ec, ctx):
  run_metrics = metrics.make(name, ec, ctx)
  predict = jax.jit(ctx.fn("predict_frames", name), static_argnums=2)
  vc = ctx.config.video
  draws = ec.futures if vc.get("objective", "regress") == "diffusion" else 1

  def run(variables, step, rng):
    result = run_metrics(variables, step, rng)
    if jax.process_index() != 0:
      return result
    plot_horizons(result, os.path.join(ctx.workdir, "curves", f"{name}_horizon.png"))
    if ec.num:
      frames = evaluators.to_host(next(ctx.batches(ec.split, ec.batch_size))[vc.key])[:ec.num]
      given = frames[:, :vc.given]
      future = frames[:, vc.given:vc.given + vc.predict]
      pred = predict(variables, np.repeat(given, draws, axis=0), vc.predict,
                     jax.random.fold_in(rng, step))
      pred = np.clip(np.asarray(jax.device_get(pred)), 0, 1).reshape(
          (ec.num, draws) + future.shape[1:])
      width = max(vc.given, vc.predict)
      pad = lambda x: np.pad(x, [(0, 0), (0, width - x.shape[1])] + [(0, 0)] * 3)
      rows = np.stack([pad(given), pad(future)] + [pad(pred[:, j]) for j in range(draws)],
                      1)  # [N, 2 + draws, width, H, W, C]
      grid.save(rows.reshape((-1,) + rows.shape[3:]),
                os.path.join(ctx.workdir, "samples", f"{name}_step_{step:06d}.png"),
                ncol=width, value_range=(0.0, 1.0))
    return result

  return run
