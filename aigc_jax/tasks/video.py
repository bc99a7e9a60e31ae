"""Video prediction: the next `video.predict` frames of batch[video.key] from its first `given`.

Two objectives (`video.objective`):
  regress    a predictor model (models/convlstm.py, models/simvp.py) maps given frames
             [B, Tg, H, W, C] and a number of future frames to one prediction [B, Tp, H, W, C],
             trained on the mean squared error per pixel (the field's training loss).
  diffusion  the diffusion task (tasks/diffusion.py, its `diffusion` and `sampler` sections)
             with an image-conditioned U-Net (models/unet.py): the future frames stacked as
             channels (model.channels = predict x C) are denoised given the past frames stacked
             as channels (model.cond_channels = given x C), both scaled to [-1, 1]. Each draw
             of the sampler is one future, so one past has many.
Frames are floats in [0, 1] (data.preprocess "value_range(0, 1, key='frames')"); longer
sequences are cut to given + predict.

Metrics (aigc_jax/video.py), on predictions clipped to [0, 1]: per-frame MSE and MAE summed over
the frame (OpenSTL's convention), SSIM and PSNR, each also per horizon (`mse_frame11` ... for
frames 11-20 of Moving MNIST) and, computed from the same batch, for two baselines that need no
training: `copy_last_*` (every future frame is the last given one) and `mean_frame_*` (every
future frame is the mean of the given ones). A stochastic model draws `video.samples` futures
per past: its mse ... are the mean over draws (what one draw scores), `best_of_K_mse` the
per-sequence minimum over the first K draws (K = 1, 5, 10 up to video.samples), `spread_mse`
the draws' squared distance from their mean (summed over the frame, as mse: 0 for identical
draws) and `ensemble_mse` the score of the draws' mean.
"""

import einops
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aigc_jax import losses, models, video
from aigc_jax.errors import ConfigError
from aigc_jax.tasks import Task, diffusion

MODELS = {"regress": ("convlstm", "simvp"), "diffusion": ("unet",)}
BASELINES = ("copy_last", "mean_frame")
PER_FRAME = ("mse", "ssim")  # metrics also reported per horizon
BEST_OF = (1, 5, 10)


def configure(c) -> None:
  c.video = ml_collections.ConfigDict({
      "given": 10, "predict": 10, "key": "frames",
      "objective": "regress",  # regress | diffusion
      "samples": 10,  # diffusion: futures drawn per past by `metrics`
  })
  diffusion.sections(c)  # the diffusion objective's


def to_channels(frames_BTHWC):
  """Frames in [0, 1] -> [B, H, W, T*C] in [-1, 1]: a clip as one image for the denoiser."""
  return einops.rearrange(2.0 * frames_BTHWC - 1.0, "b t h w c -> b h w (t c)")


def from_channels(x_BHWK, num_frames: int):
  return einops.rearrange((x_BHWK + 1.0) / 2.0, "b h w (t c) -> b t h w c", t=num_frames)


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


class _Regress:
  """A deterministic predictor trained on the per-pixel MSE."""
  ema_decay = 0.0

  def __init__(self, config):
    self.model = models.get_model(config.model)

  def init(self, rng, given, num_future):
    return dict(self.model.init({"params": rng}, given, num_future))

  def per_example_loss(self, variables, given, future):
    pred = self.model.apply(variables, given, future.shape[1])
    return jnp.mean(jnp.square(pred.astype(jnp.float32) - future), axis=(1, 2, 3, 4))

  def loss(self, params, state, given, future, mask, rng, step):
    del rng, step
    per_example = self.per_example_loss({"params": params, **state}, given, future)
    return losses.weighted_mean(per_example, mask), ({}, {})

  def predict(self, variables, given, num_future, rng):
    del rng
    return self.model.apply(variables, given, num_future)

  def held_out(self, variables, given, future, mask, rng):
    del rng
    return {"loss": jnp.sum(self.per_example_loss(variables, given, future) * mask),
            "count": jnp.sum(mask)}


class _Diffusion:
  """The diffusion task on clips: future frames as channels, given ones as the condition."""

  def __init__(self, config):
    vc, m = config.video, config.model
    if m.get("cond_channels", 0) <= 0:
      raise ConfigError("video.objective='diffusion' conditions the denoiser on the given "
                        "frames: set model.cond_channels = video.given x the frames' channels "
                        f"({vc.given} for grey frames).")
    self.task = diffusion.make(config)
    self.ema_decay = self.task.ema_decay
    self.loss_fn = self.task.loss
    self.sample = self.task.eval_fns["sample"]
    self.held_out_fn = self.task.eval_fns["metrics"]
    self.model = config.model

  def _check(self, given, num_future):
    m = self.model
    want = (m.image_size, m.image_size)
    c = given.shape[-1]
    if (tuple(given.shape[2:4]) != want or m.cond_channels != given.shape[1] * c
        or m.channels != num_future * c):
      raise ConfigError(
          f"The denoiser takes {want} frames with model.cond_channels={m.cond_channels} and "
          f"model.channels={m.channels}; these clips have {tuple(given.shape[2:4])} frames of "
          f"{c} channel(s), {given.shape[1]} given and {num_future} to predict: set "
          f"model.image_size={given.shape[2]}, model.cond_channels={given.shape[1] * c}, "
          f"model.channels={num_future * c}.")

  def _batch(self, given, future):
    return {"input": to_channels(future), diffusion.COND_IMAGE: to_channels(given)}

  def init(self, rng, given, num_future):
    self._check(given, num_future)
    b = given.shape[0]
    future = jnp.zeros((b, num_future) + given.shape[2:])
    spec = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                        self._batch(given, future))
    return self.task.init(rng, spec)

  def loss(self, params, state, given, future, mask, rng, step):
    del mask  # training batches are whole
    return self.loss_fn(params, state, self._batch(given, future), rng, step)

  def predict(self, variables, given, num_future, rng):
    self._check(given, num_future)
    x = self.sample(variables, rng, given.shape[0], cond_image=to_channels(given))
    return from_channels(x, num_future)

  def held_out(self, variables, given, future, mask, rng):
    return self.held_out_fn(variables, {**self._batch(given, future), "mask": mask}, rng)


def make(config) -> Task:
  vc = config.video
  if vc.objective not in MODELS:
    raise ConfigError(f"video.objective={vc.objective!r}; valid: {', '.join(MODELS)}.")
  if config.model.name not in MODELS[vc.objective]:
    raise ConfigError(f"video.objective={vc.objective!r} needs model.name in "
                      f"{MODELS[vc.objective]}; got {config.model.name!r}.")
  stochastic = vc.objective == "diffusion"
  if stochastic and vc.samples < 1:
    raise ConfigError(f"video.samples={vc.samples}: a stochastic predictor draws at least one "
                      "future per past.")
  objective = _Diffusion(config) if stochastic else _Regress(config)
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
    return objective.init(rng, given, vc.predict)

  def predict_frames(variables, given, num_future: int, rng):
    return objective.predict(variables, given.astype(jnp.float32), num_future, rng)

  def loss(params, state, batch, rng, step):
    given, future = cut(batch[key])
    return objective.loss(params, state, given, future, batch.get("mask"), rng, step)

  def held_out_objective(variables, batch, rng):
    """The training objective on held-out clips (cheap where `metrics` samples)."""
    given, future = cut(batch[key])
    return objective.held_out(variables, given, future, batch["mask"].astype(jnp.float32), rng)

  def metrics(variables, batch, rng):
    given, future = cut(batch[key])
    m = batch["mask"].astype(jnp.float32)
    sums = {"count": jnp.sum(m)}

    def add(prefix, per_frame_by_name):
      for name, per_frame in per_frame_by_name.items():
        sums[prefix + name] = jnp.sum(jnp.mean(per_frame, axis=1) * m)
        if name in PER_FRAME:
          sums[f"{prefix}{name}_per_frame"] = jnp.sum(per_frame * m[:, None], axis=0)

    for name, pred in baselines(given, vc.predict).items():
      add(name + "_", frame_metrics(pred, future))
    if not stochastic:
      add("", frame_metrics(jnp.clip(predict_frames(variables, given, vc.predict, rng), 0, 1),
                            future))
      return sums
    k, b = vc.samples, given.shape[0]
    draws = jnp.clip(predict_frames(variables, jnp.repeat(given, k, axis=0), vc.predict, rng),
                     0.0, 1.0)  # [B*K, ...], draw j of clip i at i*K + j
    per = frame_metrics(draws, jnp.repeat(future, k, axis=0))
    add("", {n: jnp.mean(v.reshape((b, k, -1)), axis=1) for n, v in per.items()})
    seq_mse = jnp.mean(per["mse"], axis=1).reshape(b, k)
    for n in BEST_OF:
      if n <= k:
        sums[f"best_of_{n}_mse"] = jnp.sum(jnp.min(seq_mse[:, :n], axis=1) * m)
    draws = draws.reshape((b, k) + draws.shape[1:])
    mean = jnp.mean(draws, axis=1)
    spread = jnp.mean(jnp.sum(jnp.square(draws - mean[:, None]), axis=(3, 4, 5)), axis=(1, 2))
    sums["spread_mse"] = jnp.sum(spread * m)
    sums["ensemble_mse"] = jnp.sum(jnp.mean(video.frame_mse(mean, future), axis=1) * m)
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
                        "predict_frames": predict_frames, "objective": held_out_objective},
              ema_decay=objective.ema_decay)
