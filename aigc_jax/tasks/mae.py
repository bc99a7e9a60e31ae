"""Masked autoencoding (He et al. 2022): hide `mae.mask_ratio` of each image's patches, encode the
visible ones, reconstruct the pixels of the hidden ones (mean squared error on hidden patches
only; with `norm_pix_loss`, against each patch normalised by its own mean and variance, as the
paper's best setting). A fresh mask every step from the step's key, so resume is exact.
"""

import jax
import jax.numpy as jnp
import ml_collections

from aigc_jax import models
from aigc_jax.errors import ConfigError
from aigc_jax.models.mae import mask_ids
from aigc_jax.tasks import Task


def configure(c) -> None:
  c.mae = ml_collections.ConfigDict({"mask_ratio": 0.75, "norm_pix_loss": False})


def make(config) -> Task:
  m = config.mae
  if not 0.0 < m.mask_ratio < 1.0:
    raise ConfigError(f"mae.mask_ratio={m.mask_ratio} must be in (0, 1) (the paper: 0.75).")
  model = models.get_model(config.model)
  if config.model.name != "mae":
    raise ConfigError("task 'mae' needs model.name='mae' (a ViT with a patch decoder).")
  n = model.num_patches

  def init(rng, spec):
    shape = tuple(spec["input"].shape[1:])
    want = (model.image_size, model.image_size, model.channels)
    if shape != want and shape + (1,) != want:
      raise ConfigError(f"The data's images are {shape} but the model expects {want} "
                        "(model.image_size, model.channels).")
    return dict(model.init({"params": rng}, jnp.zeros(spec["input"].shape, jnp.float32)))

  def target(x):
    t = model.patchify(x.astype(jnp.float32))
    if m.norm_pix_loss:
      t = (t - t.mean(-1, keepdims=True)) / jnp.sqrt(t.var(-1, keepdims=True) + 1e-6)
    return t

  def forward(variables, x, rng):
    keep, restore, mask = mask_ids(rng, x.shape[0], n, m.mask_ratio)
    pred = model.apply(variables, model.apply(variables, x, keep, method=model.encode), restore,
                       method=model.decode)
    err = jnp.mean(jnp.square(pred - target(x)), axis=-1)  # [B, N] per patch
    return pred, mask, jnp.sum(err * mask, axis=1) / jnp.sum(mask, axis=1)  # hidden ones only

  def loss(params, state, batch, rng, step):
    del step
    _, _, per_example = forward({"params": params, **state}, batch["input"], rng)
    return jnp.mean(per_example), ({}, {})

  def metrics(variables, batch, rng):
    _, _, per_example = forward(variables, batch["input"], rng)
    w = batch["mask"].astype(jnp.float32)
    return {"loss": jnp.sum(per_example * w), "count": jnp.sum(w)}

  def reconstruct(variables, batch, rng):
    """The masked input and the reconstruction (visible patches pasted from the input, as the
    paper shows them)."""
    x = batch["input"].astype(jnp.float32)
    pred, mask, _ = forward(variables, x, rng)
    patches = model.patchify(x)
    if m.norm_pix_loss:  # back to pixels with each patch's own statistics
      mu, var = patches.mean(-1, keepdims=True), patches.var(-1, keepdims=True)
      pred = pred * jnp.sqrt(var + 1e-6) + mu
    hidden = mask[..., None]
    return {"masked": model.unpatchify(patches * (1 - hidden)),
            "reconstruction": model.unpatchify(patches * (1 - hidden) + pred * hidden)}

  def encode(variables, x):
    return model.apply(variables, x, method=model.features)

  return Task(init=init, loss=loss, input_keys=("input",),
              eval_fns={"metrics": metrics, "reconstruct": reconstruct, "encode": encode})
