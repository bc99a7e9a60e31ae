"""Autoencoders: reconstruct batch["input"] from its code (models/autoencoder.py).

`autoencoder.likelihood`: "mse" (the decoder's output is the reconstruction; squared error per
pixel) or "bernoulli" (the decoder gives logits; cross-entropy summed over pixels, for data in
[0, 1]). A denoising autoencoder is the same task with a corruption in `config.augment` that
writes "corrupted" (e.g. "gaussian_noise(0.5, out='corrupted')"): the code is computed from the
corrupted input and the loss compares with the clean one.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aigc_jax import losses, models
from aigc_jax.errors import ConfigError
from aigc_jax.tasks import Task

LIKELIHOODS = ("mse", "bernoulli")


def configure(c) -> None:
  c.autoencoder = ml_collections.ConfigDict({"likelihood": "mse"})  # mse | bernoulli


def check_unit_range(examples: dict, what: str) -> None:
  """A Bernoulli likelihood models pixels in [0, 1]; other data is an error with the fix."""
  x = np.asarray(examples["input"])
  lo, hi = float(x.min()), float(x.max())
  if lo < 0.0 or hi > 1.0:
    raise ConfigError(f"{what} needs data in [0, 1] but the training inputs span [{lo:g}, {hi:g}]:"
                      " map them with value_range(0, 1) in data.preprocess.")


def check_image_shape(model, spec) -> None:
  shape = tuple(spec["input"].shape[1:])
  want = tuple(model.image_shape)
  if shape != want and shape + (1,) != want:
    raise ConfigError(f"The data's inputs are {shape} but model.image_shape={want}; set "
                      f"model.image_shape={shape + (1,) if len(shape) == 2 else shape}.")


def per_example(x, out, likelihood: str):
  """(reconstruction loss [B], mse [B]): nats per image (bernoulli) or mean squared error."""
  x = x.reshape(out.shape).astype(jnp.float32)
  if likelihood == "bernoulli":
    recon = jax.nn.sigmoid(out)
    return losses.bernoulli_nll(logits=out, targets=x), jnp.mean(
        (recon - x).reshape(len(x), -1) ** 2, axis=-1)
  mse = jnp.mean((out - x).reshape(len(x), -1) ** 2, axis=-1)
  return mse, mse


def make(config) -> Task:
  likelihood = config.autoencoder.likelihood
  if likelihood not in LIKELIHOODS:
    raise ConfigError(f"autoencoder.likelihood={likelihood!r}; valid: {', '.join(LIKELIHOODS)}.")
  model = models.get_model(config.model)
  if config.model.name != "autoencoder" or model.variational:
    raise ConfigError("task 'autoencoder' needs model.name='autoencoder' with variational=False "
                      "(a variational encoder belongs to task 'vae').")

  def init(rng, spec):
    check_image_shape(model, spec)
    x = jnp.zeros(spec.get("corrupted", spec["input"]).shape, jnp.float32)
    return dict(model.init({"params": rng}, x))

  def output(variables, x):
    out = model.apply(variables, x)
    return jax.nn.sigmoid(out) if likelihood == "bernoulli" else out

  def loss(params, state, batch, rng, step):
    del rng, step
    out = model.apply({"params": params, **state}, batch.get("corrupted", batch["input"]))
    rec, mse = per_example(batch["input"], out, likelihood)
    mask = batch.get("mask")
    aux = {"mse": losses.weighted_mean(mse, mask)} if likelihood == "bernoulli" else {}
    return losses.weighted_mean(rec, mask), (aux, {})

  def metrics(variables, batch, rng):
    del rng
    out = model.apply(variables, batch.get("corrupted", batch["input"]))
    rec, mse = per_example(batch["input"], out, likelihood)
    m = batch["mask"].astype(jnp.float32)
    sums = {"loss": jnp.sum(rec * m), "mse": jnp.sum(mse * m), "count": jnp.sum(m)}
    return sums

  def encode(variables, x):
    return model.apply(variables, x, method=model.encode)

  def reconstruct(variables, batch, rng):
    del rng
    return output(variables, batch.get("corrupted", batch["input"]))

  def decode(variables, z):
    out = model.apply(variables, z, method=model.decode)
    return jax.nn.sigmoid(out) if likelihood == "bernoulli" else out

  check = None
  if likelihood == "bernoulli":
    def check(examples):
      check_unit_range(examples, "autoencoder.likelihood='bernoulli'")

  return Task(init=init, loss=loss, input_keys=("input",), check_data=check,
              eval_fns={"metrics": metrics, "encode": encode, "reconstruct": reconstruct,
                        "decode": decode})
