"""Diffusion and flow matching on the task seam: one loss, the one step, the step's EMA.

Training: an image x0 in [-1, 1], a time t ~ U(0, 1) (stratified over the batch, as VDM does, to
lower the loss's variance), noise eps, x_t = alpha(t) x0 + sigma(t) eps (samplers/diffusion.py:
`diffusion.process` vp with a linear or cosine schedule, or flow), and the model's output
regressed on the target of `diffusion.prediction` (eps, v, x0; velocity for flow), optionally
weighted by min-SNR-gamma (Hang et al. 2023). A class-conditional model (model.num_classes > 0)
sees "no label" (index num_classes) for a `diffusion.label_dropout` fraction of the batch, so one
network is both the conditional and the unconditional model that classifier-free guidance
(Ho & Salimans 2021) mixes. A caption-conditioned model (model.text: text to image) reads
batch["caption"] token ids instead, "no caption" being a caption of padding only.

Sampling (`eval_fns["sample"]`, the sample grid, FID and `python -m aigc_jax.sample`): the
`sampler` section (name, steps, guidance, eta, spacing) from noise with the averaged weights
(`diffusion.ema_decay`). Guidance w mixes the conditional and unconditional predictions as
uncond + w (cond - uncond): w = 1 is the conditional model, 0 the unconditional one.

Likelihood (`eval_fns["bits_per_dim"]`, evaluators/likelihood.py): VDM's continuous-time bound
(Kingma et al. 2021) on the 8-bit images, in bits per dimension: the prior's KL at t = 1, the
diffusion term 1/2 int e^lam |x - x0_hat|^2 dlam over log-SNR at one lam per image (uniform in
lam: its variance is a fraction of uniform t's), and a discretised Gaussian
decoder over the 256 pixel levels at the lowest noise, so the bound is on the discrete data's
likelihood. A guided model's bound is its unconditional one (the "no label" row).

An image-conditioned model (model.cond_channels > 0, models/unet.py) also reads
batch["cond_image"], [B, H, W, cond_channels] in [-1, 1], beside x_t; `sample` then takes one
conditioning image per draw. The video task's diffusion objective (tasks/video.py) denoises a
clip's future frames stacked as channels given its past frames so, which draws several futures
for one past.

Latent diffusion (Rombach et al. 2022; `diffusion.autoencoder.model`, a models/autoencoder.py
kind "spatial" trained by the autoencoder task): the images are encoded to codes in [-1, 1] by
that autoencoder's frozen encoder, and the denoiser (model.image_size and model.channels: the
code's grid and channels) diffuses the codes; samples are decoded back to images. Its weights
come from `diffusion.autoencoder.workdir` at a fresh start and live in the run's parameters
under "first_stage" (frozen), so the workdir alone samples. A latent model has no pixel
likelihood: bits_per_dim is absent.
"""

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aigc_jax import evaluators, models
from aigc_jax.data import tokenizers, tokens
from aigc_jax.errors import ConfigError
from aigc_jax.options import init as init_option
from aigc_jax.samplers import diffusion as lib
from aigc_jax.tasks import Task
from aigc_jax.tasks.lm import vocab_size

WEIGHTINGS = ("none", "min_snr")
FIRST = "first_stage"  # the latent model's autoencoder in params
COND_IMAGE = "cond_image"  # an image-conditioned model's batch key
FLOW_T_MIN = 1e-4  # flow's likelihood bound starts here: its log-SNR at t = 0 is infinite
LOGSNR_FLOOR = 20.0  # ... and ends at log-SNR -20 (its prior's KL there: ~1e-9 nats a pixel)


def configure(c) -> None:
  """The diffusion and sampler sections; evaluators: the held-out loss (`test`), a sample grid
  (`samples`) and FID/IS (`scores`)."""
  sections(c)
  c.evals.test = evaluators.spec("metrics")
  c.evals.samples = evaluators.spec("sample_grid")
  c.evals.scores = evaluators.spec("fid")


def sections(c) -> None:
  """The diffusion and sampler sections alone (also the video task's diffusion objective's)."""
  c.diffusion = ml_collections.ConfigDict({
      "process": "vp",  # vp | flow
      "schedule": "cosine",  # vp: linear | cosine
      "prediction": "eps",  # vp: eps | v | x0; flow: velocity
      "weighting": "none",  # none | min_snr
      "min_snr_gamma": 5.0,
      "label_dropout": 0.1,  # conditional models: fraction trained without the label
      "ema_decay": 0.999,  # the averaged weights sample; 0: the live ones
      # Latent diffusion: the first stage's model section (empty: diffuse pixels) and the
      # workdir its weights are loaded from at a fresh start.
      "autoencoder": {"model": ml_collections.ConfigDict(), "workdir": "",
                      "checkpoint": "latest"},
  })
  c.sampler = ml_collections.ConfigDict({
      "name": "dpm++2m",  # ddpm | ddim | euler | heun | dpm++2m
      "steps": 50,
      "guidance": 1.0,  # classifier-free guidance weight; 1: none (conditional models only)
      "eta": 0.0,  # ddim's noise (0: deterministic, 1: ddpm)
      "spacing": "",  # uniform | karras; "": the sampler's own
      # Clip each step's x0 estimate to the data's [-1, 1] (and re-derive eps from it): at high
      # noise x0 = (x - sigma eps) / alpha divides by alpha ~ 0, and without the clip the
      # deterministic samplers carry that error to the end.
      "clip_x0": True,
  })


def check(config) -> None:
  """Config errors that need no data, raised before anything is built."""
  d = config.diffusion
  if d.process not in lib.PROCESSES:
    raise ConfigError(f"diffusion.process={d.process!r}; valid: {', '.join(lib.PROCESSES)}.")
  if d.process == "vp" and d.schedule not in lib.SCHEDULES:
    raise ConfigError(f"diffusion.schedule={d.schedule!r}; valid: {', '.join(lib.SCHEDULES)}.")
  valid = lib.PREDICTIONS[d.process]
  if d.prediction not in valid:
    raise ConfigError(f"diffusion.prediction={d.prediction!r} with process {d.process!r}; "
                      f"valid: {', '.join(valid)}.")
  if d.weighting not in WEIGHTINGS:
    raise ConfigError(f"diffusion.weighting={d.weighting!r}; valid: {', '.join(WEIGHTINGS)}.")
  if d.weighting == "min_snr" and (d.process != "vp" or d.min_snr_gamma <= 0):
    raise ConfigError("diffusion.weighting='min_snr' needs process 'vp' and min_snr_gamma > 0 "
                      f"(got {d.process!r}, {d.min_snr_gamma}).")
  if not 0.0 <= d.label_dropout < 1.0:
    raise ConfigError(f"diffusion.label_dropout={d.label_dropout} must be in [0, 1).")
  if not 0.0 <= d.ema_decay < 1.0:
    raise ConfigError(f"diffusion.ema_decay={d.ema_decay} must be in [0, 1) (0: no average).")
  check_sampler(config)


def check_sampler(config) -> None:
  s = config.sampler
  if s.name not in lib.SAMPLERS:
    raise ConfigError(f"sampler.name={s.name!r}; valid: {', '.join(lib.SAMPLERS)}.")
  if s.steps < 1:
    raise ConfigError(f"sampler.steps={s.steps}: a sampler needs at least 1 step.")
  if s.spacing and s.spacing not in lib.SPACINGS:
    raise ConfigError(f"sampler.spacing={s.spacing!r}; valid: {', '.join(lib.SPACINGS)}, or "
                      "empty for the sampler's own.")
  if s.guidance < 0:
    raise ConfigError(f"sampler.guidance={s.guidance} must be >= 0 (1: no guidance).")
  conditional = config.model.get("num_classes", 0) > 0 or bool(config.model.get("text"))
  if s.guidance != 1.0 and not conditional:
    raise ConfigError(f"sampler.guidance={s.guidance} needs a conditional model "
                      "(model.num_classes > 0 or model.text, trained with diffusion.label_dropout "
                      "> 0); this model is unconditional, so leave guidance at 1.")
  if s.guidance != 1.0 and config.diffusion.label_dropout <= 0:
    raise ConfigError(f"sampler.guidance={s.guidance} mixes in the unconditional model, which "
                      "diffusion.label_dropout=0 never trained: train with label_dropout > 0 "
                      "(0.1) or leave guidance at 1.")


def make_without_data(config) -> tuple[Task, dict]:
  """The task and its abstract global batch from the model's image size, for ahead-of-time
  compiles (aigc_jax.tools.compile): images (or latents) [B, H, W, C], labels if conditional."""
  m, b = config.model, config.data.batch_size
  first = (config.diffusion.get("autoencoder") or {}).get("model")
  shape = tuple(first.image_shape) if first else (m.image_size, m.image_size, m.channels)
  spec = {"input": jax.ShapeDtypeStruct((b,) + shape, jnp.float32)}
  if m.get("num_classes", 0) > 0:
    spec["label"] = jax.ShapeDtypeStruct((b,), jnp.int32)
  if m.get("text"):
    spec["caption"] = jax.ShapeDtypeStruct((b, config.data.seq_len), jnp.int32)
  if m.get("cond_channels", 0) > 0:
    spec[COND_IMAGE] = jax.ShapeDtypeStruct((b,) + shape[:2] + (m.cond_channels,), jnp.float32)
  return make(config), spec


def check_text_tower(config) -> None:
  """A caption encoder loaded from a clip run (config.init, map "caption/text<-text") must be
  built as that run built it: the causal mask and the pooling have no parameters, so a mismatch
  would load without complaint and read captions wrongly."""
  init = config.get("init") or {}
  path = os.path.join(init.get("workdir") or "", "config.json")
  if not init.get("workdir") or "caption/text" not in init.get("map", "") or not (
      os.path.exists(path)):
    return
  with open(path) as f:
    src = json.load(f)["model"]
  if "text" not in src:
    return
  ours = {**config.model.text.to_dict(), "pooling": config.model.get("text_pooling", "mean")}
  theirs = {**src["text"], "pooling": src.get("pooling", "mean")}
  differ = sorted(k for k in set(ours) | set(theirs)
                  if k in ours and k in theirs and _plain(ours[k]) != _plain(theirs[k]))
  if differ:
    raise ConfigError(
        f"The text tower loaded from {init.workdir} was trained with " + ", ".join(
            f"{k}={theirs[k]!r}" for k in differ) + " but this run builds it with " + ", ".join(
            f"{k}={ours[k]!r}" for k in differ) + ": set model.text.* (model.text_pooling for "
        "the pooling) as that run's model.text, or load a tower trained like this one.")


def _plain(v):
  return list(v) if isinstance(v, (tuple, list)) else v


def make(config) -> Task:
  check(config)
  check_text_tower(config)
  d, s = config.diffusion, config.sampler
  model = models.get_model(config.model)
  if not hasattr(model, "num_classes") or not hasattr(model, "image_size"):
    raise ConfigError(f"task 'diffusion' needs a denoiser model (unet, dit) taking (x, t, "
                      f"labels); got model.name={config.model.name!r}.")
  text = bool(getattr(model, "text", None))
  if text and not config.data.tokenizer:
    raise ConfigError("A caption-conditioned model (model.text) needs caption tokens: "
                      "data.tokenizer, data.packing='examples', data.text_key='caption', "
                      "data.tokens_key='caption'.")
  save = None
  if text and model.vocab_size == 0:
    tok = tokens.get_tokenizer(config.data)
    model = models.get_model(config.model, vocab_size=vocab_size(config, tok))

    def save(workdir):  # aigc_jax.sample encodes typed captions with it
      tokenizers.save(tok, os.path.join(workdir, tokenizers.WORKDIR_FILE))
  first, pretrained = first_stage(d.get("autoencoder"), model)
  cond_channels = getattr(model, "cond_channels", 0)
  if cond_channels and first:
    raise ConfigError("An image-conditioned denoiser (model.cond_channels > 0) diffuses pixels; "
                      "latent diffusion (diffusion.autoencoder.model) does not support it.")
  process = lib.Process(d.process, d.schedule)
  conditional = model.num_classes > 0 or text
  null = model.num_classes
  cond_key = "caption" if text else "label"
  size = (model.image_size, model.image_size, model.channels)

  def init(rng, spec):
    if first:
      if tuple(spec["input"].shape[1:]) != first.image_shape:
        raise ConfigError(
            f"The data's images are {tuple(spec['input'].shape[1:])} but the first stage "
            f"encodes {first.image_shape} (diffusion.autoencoder.model.image_shape): train "
            "the autoencoder on this data, or resize the data with data.preprocess.")
      spec = {**spec, "input": jax.ShapeDtypeStruct((2,) + size, jnp.float32)}
    if tuple(spec["input"].shape[1:]) != size:
      raise ConfigError(
          f"The data's images are {tuple(spec['input'].shape[1:])} but the model denoises "
          f"{size} (model.image_size={model.image_size}, model.channels={model.channels}): "
          f"set the model to the data's size, or resize the data with data.preprocess.")
    labels = None
    if conditional:
      labels = null_cond(2)
    extra = {}
    if cond_channels:
      extra["cond_image"] = jnp.zeros((2,) + size[:2] + (cond_channels,))
    variables = dict(model.init({"params": rng}, jnp.zeros((2,) + size), jnp.zeros((2,)),
                                labels, **extra))
    if first:  # its values come from diffusion.autoencoder.workdir (pretrained)
      images = jnp.zeros((2,) + first.image_shape)
      variables["params"] = {**variables["params"],
                             FIRST: first.init(rng, images)["params"]}
    return variables

  def check_data(examples):
    x = np.asarray(examples["input"], np.float32)
    if x.min() < -1.0 - 1e-6 or x.max() > 1.0 + 1e-6 or x.max() <= 0.0:
      raise ConfigError(f"Diffusion models images in [-1, 1]; the data's 'input' spans "
                        f"[{x.min():.3g}, {x.max():.3g}]. Add value_range(-1, 1) to "
                        "data.preprocess.")
    if cond_channels:
      c = np.asarray(examples[COND_IMAGE], np.float32)
      if c.shape[1:] != size[:2] + (cond_channels,):
        raise ConfigError(f"batch[{COND_IMAGE!r}] is {c.shape[1:]} per example; this denoiser "
                          f"is conditioned on {size[:2] + (cond_channels,)} "
                          "(model.image_size, model.cond_channels).")

  t_min = FLOW_T_MIN if d.process == "flow" else 0.0

  def apply(params, x, t, labels, cond_image=None, train=False, rng=None):
    rngs = {"dropout": rng} if train else {}
    params = {k: v for k, v in params.items() if k != FIRST}
    extra = {"cond_image": cond_image} if cond_channels else {}
    return model.apply({"params": params}, x, t, labels, train=train, rngs=rngs, **extra)

  def encode(params, images):
    """What the denoiser diffuses: the images, or their first-stage codes."""
    if not first:
      return images
    z = first.apply({"params": params[FIRST]}, images, method=first.encode)
    return jax.lax.stop_gradient(z)

  def decode(params, x):
    if not first:
      return x
    return jnp.clip(first.apply({"params": params[FIRST]}, x, method=first.decode), -1.0, 1.0)

  def noised(x0, rng):
    """(t [B] stratified in [0, 1), eps, x_t, alpha, sigma)."""
    t_rng, e_rng = jax.random.split(rng)
    b = x0.shape[0]
    t = jnp.mod(jax.random.uniform(t_rng, ()) + jnp.arange(b) / b, 1.0)
    eps = jax.random.normal(e_rng, x0.shape, x0.dtype)
    a, sg = process.alpha_sigma(t)
    return t, eps, lib.expand(a, x0) * x0 + lib.expand(sg, x0) * eps, a, sg

  def per_example_loss(params, x0, labels, cond_image, rng, train):
    n_rng, d_rng, l_rng = jax.random.split(rng, 3)
    t, eps, xt, a, sg = noised(x0, n_rng)
    if conditional and train and d.label_dropout > 0:
      drop = jax.random.bernoulli(l_rng, d.label_dropout, labels.shape[:1])
      labels = jnp.where(drop.reshape((-1,) + (1,) * (labels.ndim - 1)), null_like(labels),
                         labels)
    out = apply(params, xt, t, labels, cond_image, train, d_rng)
    err = jnp.mean(jnp.square(out - lib.target(d.prediction, x0, eps, a, sg)),
                   axis=tuple(range(1, x0.ndim)))
    w = jnp.ones_like(err)
    if d.weighting == "min_snr":
      snr = jnp.square(a / sg)
      clipped = jnp.minimum(snr, d.min_snr_gamma)
      w = {"eps": clipped / snr, "v": clipped / (snr + 1.0), "x0": clipped}[d.prediction]
    return w * err, err

  def labels_of(batch):
    return batch[cond_key].astype(jnp.int32) if conditional else None

  def cond_image_of(batch):
    return batch[COND_IMAGE].astype(jnp.float32) if cond_channels else None

  def null_like(cond):
    """No condition: the "no label" index, or a caption of padding only."""
    return jnp.full_like(cond, tokens.PAD if text else null)

  def null_cond(n):
    shape = (n, config.data.seq_len) if text else (n,)
    return jnp.full(shape, tokens.PAD if text else null, jnp.int32)

  def loss(params, state, batch, rng, step):
    del state, step
    weighted, err = per_example_loss(params, encode(params, batch["input"]), labels_of(batch),
                                     cond_image_of(batch), rng, True)
    return jnp.mean(weighted), ({"mse": jnp.mean(err)}, {})

  def sampling_params(variables):
    return variables["ema"] if "ema" in variables else variables["params"]

  def denoiser(params, labels, guidance, cond_image=None):
    guided = conditional and guidance != 1.0

    def guided_x0_eps(x, t):
      tb = jnp.full((x.shape[0],), t, jnp.float32)
      a, sg = process.alpha_sigma(t)
      if not guided:
        out = apply(params, x, tb, labels, cond_image)
        return lib.to_x0_eps(d.prediction, out, x, a, sg)
      both = apply(params, jnp.concatenate([x, x]), jnp.concatenate([tb, tb]),
                   jnp.concatenate([labels, null_like(labels)]),
                   None if cond_image is None else jnp.concatenate([cond_image, cond_image]))
      cond, uncond = jnp.split(both, 2)
      x0c, ec = lib.to_x0_eps(d.prediction, cond, x, a, sg)
      x0u, eu = lib.to_x0_eps(d.prediction, uncond, x, a, sg)
      return x0u + guidance * (x0c - x0u), eu + guidance * (ec - eu)

    def denoise(x, t):
      x0, eps = guided_x0_eps(x, t)
      if not s.get("clip_x0", True):
        return x0, eps
      a, sg = process.alpha_sigma(t)
      x0 = jnp.clip(x0, -1.0, 1.0)
      # sigma = 0 only at flow's t = 0, where eps no longer matters.
      return x0, jnp.where(sg > 0, (x - a * x0) / jnp.maximum(sg, 1e-12), eps)
    return denoise

  def sample(variables, rng, num, labels=None, cond_image=None):
    """`num` images in [-1, 1] by the `sampler` section, from the averaged weights; an
    image-conditioned model draws image i given cond_image[i] ([num, H, W, cond_channels])."""
    if text and labels is None:
      raise ConfigError("This model draws from captions (model.text): pass caption ids [num, L] "
                        "(python -m aigc_jax.sample --caption='a 3 above a 5').")
    if conditional and labels is None:
      labels = jnp.arange(num) % model.num_classes
    if labels is not None:
      labels = jnp.asarray(labels, jnp.int32)
    if cond_channels:
      want = (num,) + size[:2] + (cond_channels,)
      if cond_image is None or tuple(cond_image.shape) != want:
        raise ConfigError(f"This model draws given an image (model.cond_channels="
                          f"{cond_channels}): pass cond_image of shape {want}; got "
                          f"{None if cond_image is None else tuple(cond_image.shape)}.")
      cond_image = jnp.asarray(cond_image, jnp.float32)
    n_rng, s_rng = jax.random.split(rng)
    x = jax.random.normal(n_rng, (num,) + size)
    params = sampling_params(variables)
    out = lib.sample(denoiser(params, labels, s.guidance, cond_image), process, x, s_rng,
                     sampler=s.name, steps=s.steps, eta=s.eta, spacing=s.spacing)
    return decode(params, jnp.clip(out, -1.0, 1.0))

  def denoise(variables, x0, labels, t, rng):
    """(x_t, the model's x0 estimate) for images x0 at one time t: the denoising strip (a
    latent model's codes decoded)."""
    params = sampling_params(variables)
    x0 = encode(params, jnp.asarray(x0, jnp.float32))
    labels = None if not conditional else (
        null_cond(x0.shape[0]) if labels is None else jnp.asarray(labels, jnp.int32))
    t = jnp.clip(jnp.asarray(t, jnp.float32), t_min, 1.0)
    a, sg = process.alpha_sigma(t)
    xt = a * x0 + sg * jax.random.normal(rng, x0.shape)
    out = apply(params, xt, jnp.full((x0.shape[0],), t), labels)
    x0_hat = lib.to_x0_eps(d.prediction, out, xt, a, sg)[0]
    return decode(params, xt), decode(params, jnp.clip(x0_hat, -1.0, 1.0) if first else x0_hat)

  def labels_fn(num, grouped):
    if not conditional or text:  # captions come from the data (evaluators/compositions.py)
      return None
    k = model.num_classes
    return np.repeat(np.arange(k), -(-num // k))[:num] if grouped else np.arange(num) % k

  def metrics(variables, batch, rng):
    """The training loss (unweighted mse too) on held-out images, averaged weights."""
    labels = labels_of(batch)
    params = sampling_params(variables)
    weighted, err = per_example_loss(params, encode(params, batch["input"]), labels,
                                     cond_image_of(batch), rng, False)
    m = batch["mask"].astype(jnp.float32)
    return {"loss": jnp.sum(weighted * m), "mse": jnp.sum(err * m), "count": jnp.sum(m)}

  def bits_per_dim(variables, batch, rng):
    """[B]: VDM's bound on -log2 P(x) / dims at one log-SNR sample per image."""
    x = batch["input"].astype(jnp.float32)
    b, dims = x.shape[0], int(np.prod(x.shape[1:]))
    params = sampling_params(variables)
    labels = null_cond(b) if conditional and d.label_dropout > 0 else labels_of(batch)
    t_rng, e_rng, r_rng = jax.random.split(rng, 3)
    # The diffusion term is an integral over log-SNR, 1/2 int e^lam |x - x0_hat(lam)|^2 dlam,
    # drawn uniformly in lam (stratified): a denoiser's error shrinks as e^-lam, so the integrand
    # is nearly flat, where drawing t uniformly weights it by lam'(t), which spikes at the ends.
    lam_hi = process.logsnr(t_min)
    lam_lo = jnp.maximum(process.logsnr(1.0), -LOGSNR_FLOOR)  # flow's is -inf at t = 1
    u = jnp.mod(jax.random.uniform(t_rng, ()) + jnp.arange(b) / b, 1.0)
    lam = lam_lo + (lam_hi - lam_lo) * u
    t = process.t_of_logsnr(lam)
    eps = jax.random.normal(e_rng, x.shape)
    a, sg = process.alpha_sigma(t)
    xt = lib.expand(a, x) * x + lib.expand(sg, x) * eps
    x0_hat, _ = lib.to_x0_eps(d.prediction, apply(params, xt, t, labels, cond_image_of(batch)),
                              xt, a, sg)
    diff = 0.5 * (lam_hi - lam_lo) * jnp.exp(lam) * jnp.sum(
        jnp.square(x - x0_hat), axis=tuple(range(1, x.ndim)))
    a1, s1 = process.alpha_sigma(process.t_of_logsnr(lam_lo))  # the prior where the term ends
    prior = 0.5 * jnp.sum(a1**2 * x**2 + s1**2 - 1.0 - jnp.log(s1**2), axis=tuple(
        range(1, x.ndim)))
    # Decoder: p(x = level k | z_0) with z_0 / alpha_0 ~ N(level, (sigma_0 / alpha_0)^2),
    # normalised over the 256 levels.
    a0, s0 = process.alpha_sigma(t_min)
    z0 = (a0 * x + s0 * jax.random.normal(r_rng, x.shape)) / a0
    levels = jnp.linspace(-1.0, 1.0, 256).reshape((1,) * x.ndim + (256,))
    logits = -0.5 * jnp.square((z0[..., None] - levels) * (a0 / s0))
    k = jnp.round((x + 1.0) * 127.5).astype(jnp.int32)
    logp = jax.nn.log_softmax(logits, axis=-1)
    rec = -jnp.sum(jnp.take_along_axis(logp, k[..., None], axis=-1), axis=tuple(
        range(1, x.ndim + 1)))
    return (diff + prior + rec) / (dims * np.log(2.0))

  fns = {"metrics": metrics, "sample": sample, "labels": labels_fn, "denoise": denoise}
  if not first:
    fns["bits_per_dim"] = bits_per_dim
  return Task(init=init, loss=loss, eval_fns=fns, pretrained=pretrained,
              fixed=f"^{FIRST}/" if first else "",
              input_keys=("input",) + ((cond_key,) if conditional else ()) + (
                  (COND_IMAGE,) if cond_channels else ()),
              input_help="A class-conditional model (model.num_classes > 0) needs a 'label' "
                         "feature, a caption-conditioned one (model.text) 'caption' token ids, "
                         f"an image-conditioned one (model.cond_channels) {COND_IMAGE!r}; "
                         "use such a data set or an unconditional model.",
              check_data=check_data, ema_decay=d.ema_decay, save_artifacts=save)


def first_stage(ae, model):
  """(the first stage's autoencoder module, its pretrained(abstract params) loader), or
  (None, None) for pixel diffusion (also a workdir saved before latent diffusion existed);
  errors when the denoiser's size is not the code's."""
  if not ae or not ae.get("model"):
    return None, None
  first = models.get_model(ae.model) if ae.model.get("name") == "autoencoder" else None
  if first is None or first.kind != "spatial" or first.variational:
    raise ConfigError("diffusion.autoencoder.model must be an autoencoder of kind 'spatial' "
                      "(a feature-map code; e.g. experiments/ae_captions.py's model()), got "
                      f"name={ae.model.get('name')!r}, kind={ae.model.get('kind')!r}.")
  h, w, _ = first.image_shape
  s = 2 ** len(first.hidden)
  code = (h // s, w // s, first.latent_dim)
  if code != (model.image_size, model.image_size, model.channels):
    raise ConfigError(
        f"The first stage codes {first.image_shape} images as {code}, but the denoiser takes "
        f"{(model.image_size, model.image_size, model.channels)}: set model.image_size="
        f"{code[0]} and model.channels={code[2]}.")

  def pretrained(abstract_params):
    if not ae.workdir:
      raise ConfigError(
          "Latent diffusion starts from a trained first stage: set "
          "--config.diffusion.autoencoder.workdir=DIR, a workdir of the autoencoder task with "
          "this model (python -m aigc_jax.main --config=experiments/ae_captions.py --workdir=DIR).")
    spec = ml_collections.ConfigDict({"workdir": ae.workdir, "checkpoint": ae.checkpoint,
                                      "map": f"{FIRST}<-"})
    return init_option.load_init(spec, abstract_params)

  return first, pretrained
