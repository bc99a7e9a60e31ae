"""Variational autoencoder (Kingma & Welling 2014): Gaussian latent, Bernoulli decoder.

loss = E_q[-log p(x|z)] + beta_t KL(q(z|x) || N(0, I)), one reparameterised sample per example;
beta_t rises linearly from 0 to `vae.beta` over `vae.kl_warmup_steps` (KL annealing, Bowman et
al. 2016), which is why the loss sees the step. Dynamically binarised MNIST is the data set with
"binarize" in config.augment (a fresh draw every step) and in the evaluators' `augment` (one
fixed draw of the test split). Evaluation: the single-sample negative ELBO (`metrics`, with the
evaluation rng), and `log_weights` for the importance-weighted bound (evaluators/iwae.py).
"""

import jax
import jax.numpy as jnp
import ml_collections

from aigc_jax import losses, models
from aigc_jax.errors import ConfigError
from aigc_jax.samplers import latent
from aigc_jax.tasks import Task
from aigc_jax.tasks.autoencoder import check_image_shape, check_unit_range

LIKELIHOODS = ("bernoulli",)


def configure(c) -> None:
  c.vae = ml_collections.ConfigDict({
      "likelihood": "bernoulli",
      "beta": 1.0,  # KL weight after warm-up (1: the ELBO; > 1: beta-VAE)
      "kl_warmup_steps": 0,  # linear KL annealing from 0 to beta; 0: off
  })


def make(config) -> Task:
  v = config.vae
  if v.likelihood not in LIKELIHOODS:
    raise ConfigError(f"vae.likelihood={v.likelihood!r}; valid: {', '.join(LIKELIHOODS)}.")
  if v.beta < 0 or v.kl_warmup_steps < 0:
    raise ConfigError(f"vae.beta={v.beta} and vae.kl_warmup_steps={v.kl_warmup_steps} must be "
                      ">= 0.")
  model = models.get_model(config.model)
  if config.model.name != "autoencoder" or not model.variational:
    raise ConfigError("task 'vae' needs model.name='autoencoder' with variational=True.")

  def init(rng, spec):
    check_image_shape(model, spec)
    return dict(model.init({"params": rng}, jnp.zeros(spec["input"].shape, jnp.float32)))

  def terms(variables, x, rng):
    """Per example: (-log p(x|z) at one z ~ q(z|x), KL(q(z|x) || p(z)))."""
    mean, logvar = model.apply(variables, x, method=model.encode)
    z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mean.shape)
    logits = model.apply(variables, z, method=model.decode)
    rec = losses.bernoulli_nll(logits=logits, targets=x.reshape(logits.shape).astype(jnp.float32))
    return rec, losses.gaussian_kl(mean=mean, log_variance=logvar)

  def loss(params, state, batch, rng, step):
    rec, kl = terms({"params": params, **state}, batch["input"], rng)
    beta = jnp.asarray(v.beta, jnp.float32)
    if v.kl_warmup_steps:
      beta = beta * jnp.minimum(1.0, step.astype(jnp.float32) / v.kl_warmup_steps)
    mask = batch.get("mask")
    aux = {"recon": losses.weighted_mean(rec, mask), "kl": losses.weighted_mean(kl, mask),
           "neg_elbo": losses.weighted_mean(rec + kl, mask), "beta": beta}
    return losses.weighted_mean(rec + beta * kl, mask), (aux, {})

  def metrics(variables, batch, rng):
    rec, kl = terms(variables, batch["input"], rng)
    m = batch["mask"].astype(jnp.float32)
    return {"neg_elbo": jnp.sum((rec + kl) * m), "recon": jnp.sum(rec * m),
            "kl": jnp.sum(kl * m), "count": jnp.sum(m)}

  def log_weights(variables, batch, rng, k: int):
    """[B, k]: log p(x, z_i) - log q(z_i | x) for k samples z_i ~ q(z|x) per example."""
    x = batch["input"]
    mean, logvar = model.apply(variables, x, method=model.encode)
    eps = jax.random.normal(rng, (mean.shape[0], k, mean.shape[1]))
    z = mean[:, None] + jnp.exp(0.5 * logvar)[:, None] * eps
    logits = model.apply(variables, z.reshape(-1, z.shape[-1]), method=model.decode)
    targets = jnp.repeat(x.reshape(x.shape[0], 1, -1), k, axis=1).reshape(logits.shape[0], -1)
    log_px = -losses.bernoulli_nll(logits=logits.reshape(targets.shape),
                                   targets=targets.astype(jnp.float32)).reshape(-1, k)
    log_pz = losses.gaussian_log_density(z)
    log_qz = losses.gaussian_log_density(z, mean=mean[:, None], log_variance=logvar[:, None])
    return log_px + log_pz - log_qz

  def encode(variables, x):
    return model.apply(variables, x, method=model.encode)[0]

  def reconstruct(variables, batch, rng):
    del rng
    return jax.nn.sigmoid(model.apply(variables, batch["input"]))  # decodes the mean

  def decode(variables, z):
    return jax.nn.sigmoid(model.apply(variables, z, method=model.decode))

  def sample(variables, rng, num, labels=None):
    """Pixel probabilities of the decoder at z ~ N(0, I) (the mean image, not a binary draw)."""
    del labels
    return latent.from_prior(lambda z: decode(variables, z), rng, num, model.latent_dim)

  def check(examples):
    check_unit_range(examples, "vae.likelihood='bernoulli'")

  return Task(init=init, loss=loss, input_keys=("input",), check_data=check,
              eval_fns={"metrics": metrics, "log_weights": log_weights, "encode": encode,
                        "reconstruct": reconstruct, "decode": decode, "sample": sample})
