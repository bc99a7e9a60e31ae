"""Video prediction: the next `video.predict` frames of batch[video.key] from its first `given`.

A predictor model (models/convlstm.py, models/simvp.py) maps given frames [B, Tg, H, W, C] and a
number of future frames to predictions [B, Tp, H, W, C]; the loss is the mean squared error per
pixel (the field's training loss). Frames are floats in [0, 1] (data.preprocess
"value_range(0, 1, key='frames')"); longer sequences are cut to given + predict.

Metrics (aigc_jax/video.py), on predictions clipped to [0, 1]: per-frame MSE and MAE summed over
the frame (OpenSTL's convention), SSIM and PSNR, each also per horizon (`mse_frame11` ... for
frames 11-20 of Moving MNIST) and, computed from the same batch, for two baselines that need no
training: `copy_last_*` (every future frame is the last given one) and `mean_frame_*` (every
future frame is the mean of the given ones).
"""

import jax.numpy as jnp
import ml_collections
import numpy as np

from aigc_jax import losses, models, video
from aigc_jax.errors import ConfigError
from aigc_jax.tasks import Task

MODELS = ("convlstm", "simvp")
BASELINES = ("copy_last", "mean_frame")
PER_FRAME = ("mse", "ssim")  # metrics also reported per horizon


def configure(c) -> None:
  c.video = ml_collections.ConfigDict({"given": 10, "predict": 10, "key": "frames"})


def _check_length(num_frames: int, vc) -> None:
  if vc.given < 1 or vc.predict < 1:
    raise ConfigError(f"video.given={vc.given} and video.predict={vc.predict} must be >= 1.")
  if num_frames < vc.given + vc.predict:
    raise ConfigError(f"The sequences have {num_frames} frames, fewer than video.given + "
                      f"video.predict = {vc.given} + {vc.predict}; make them longer "
                      "(data.video.frames) or predict fewer.")


def frame_metrics(pred, true) -> dict:
  """{name: [B, T]} per-frame metrics of frames in [0, 1]."""
  return {"mse": video.frame_mse(pred, true), "mae": video.frame_mae(pred, true),
          "ssim": video.ssim(pred, true), "psnr": video.psnr(pred, true)}


def baselines(given, num_future: int) -> dict:
  """{name: [B, num_future, H, W, C]} predictions that need no training."""
  shape = given.shape[:1] + (num_future,) + given.shape[2:]
  return {"copy_last": jnp.broadcast_to(given[:, -1:], shape),
          "mean_frame": jnp.broadcast_to(jnp.mean(given, axis=1, keepdims=True), shape)}


def make(config) -> Task:
  vc = config.video
  if config.model.name not in MODELS:
    raise ConfigError(f"task 'video' needs a frame predictor, model.name in {MODELS}; got "
                      f"{config.model.name!r}.")
  model = models.get_model(config.model)
  key = vc.key

  def cut(frames):
    _check_length(frames.shape[1], vc)
    frames = frames.astype(jnp.float32)
    return frames[:, :vc.given], frames[:, vc.given:vc.given + vc.predict]

  def init(rng, spec):
    if len(spec[key].shape) != 5:
      raise ConfigError(f"task 'video' needs batch[{key!r}] as [B, T, H, W, C] frames; got "
                        f"{spec[key].shape}.")
    _check_length(spec[key].shape[1], vc)
    given = jnp.zeros((1,) + spec[key].shape[1:], jnp.float32)[:, :vc.given]
    return dict(model.init({"params": rng}, given, vc.predict))

  def predict_frames(variables, given, num_future: int):
    return model.apply(variables, given.astype(jnp.float32), num_future)

  def loss(params, state, batch, rng, step):
    del rng, step
    given, future = cut(batch[key])
    pred = model.apply({"params": params, **state}, given, vc.predict)
    per_example = jnp.mean(jnp.square(pred.astype(jnp.float32) - future), axis=(1, 2, 3, 4))
    return losses.weighted_mean(per_example, batch.get("mask")), ({}, {})

  def metrics(variables, batch, rng):
    del rng
    given, future = cut(batch[key])
    m = batch["mask"].astype(jnp.float32)
    preds = {"": jnp.clip(predict_frames(variables, given, vc.predict), 0.0, 1.0),
             **{f"{k}_": v for k, v in baselines(given, vc.predict).items()}}
    sums = {"count": jnp.sum(m)}
    for prefix, pred in preds.items():
      for name, per_frame in frame_metrics(pred, future).items():
        sums[prefix + name] = jnp.sum(jnp.mean(per_frame, axis=1) * m)
        if name in PER_FRAME:
          sums[f"{prefix}{name}_per_frame"] = jnp.sum(per_frame * m[:, None], axis=0)
    return sums

  def finalize(means):
    """Per-horizon vectors -> scalars named by frame number (mse_frame11 ...)."""
    out = {}
    for k, v in means.items():
      if np.ndim(v) == 0:
        out[k] = v
        continue
      stem = k[:-len("_per_frame")]
      out.update({f"{stem}_frame{vc.given + i + 1}": float(x) for i, x in enumerate(v)})
    return out

  def check(examples):
    x = np.asarray(examples[key])
    if x.dtype == np.uint8 or float(x.min()) < 0.0 or float(x.max()) > 1.0:
      raise ConfigError(f"task 'video' needs frames in [0, 1]; batch[{key!r}] is {x.dtype} in "
                        f"[{x.min()}, {x.max()}]: add value_range(0, 1, key={key!r}) to "
                        "data.preprocess.")
    _check_length(x.shape[1], vc)

  return Task(init=init, loss=loss, input_keys=(key,), check_data=check,
              input_help="Moving MNIST: data.name='mnist_idx' with data.video.frames=20 "
                         "(generated), or the catalog's moving_mnist with "
                         "rename(image_sequence='frames') in data.preprocess.",
              eval_fns={"metrics": metrics, "finalize": finalize,
                        "predict_frames": predict_frames})
