"""Generative adversarial networks on the task seam: two players, one jitted step.

The discriminator (critic) and the generator are players with their own optimisers; the step
makes `gan.n_critic` critic updates, each on its own 1/n_critic of the batch, then one generator
update (step.py). An exponential moving average of the generator's weights is kept in the state
and used for sampling. Batch-norm statistics, both optimiser states and the average are all in
the checkpoint, so a resumed run continues exactly.

Evaluation is declared in `config.evals` (see `configure`): a grid of samples from fixed noise
(`sample_grid`), and FID / Inception Score / class histogram with the project's own classifier
(`fid`), next to the real held-out split's values (the floor a perfect generator would reach).
They reach the task through `eval_fns["sample"]` (and `labels` for a conditional model).
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aigc_jax import evaluators, losses, models
from aigc_jax.errors import ConfigError
from aigc_jax.samplers import latent
from aigc_jax.tasks import Player, Task

LOSSES = {  # name -> (discriminator loss, generator loss)
    "nonsaturating": (losses.gan_d_minimax, losses.gan_g_nonsaturating),
    "minimax": (losses.gan_d_minimax, losses.gan_g_minimax),
    "wasserstein": (losses.wasserstein_d, losses.wasserstein_g),
    "hinge": (losses.hinge_d, losses.hinge_g),
}
SAMPLE_BN = ("batch", "running")


def configure(c) -> None:
  """The gan section; evaluators: the discriminator's score on real held-out images (`test`),
  a sample grid (`samples`) and FID/IS (`scores`)."""
  c.gan = ml_collections.ConfigDict()
  c.gan.loss = "nonsaturating"  # nonsaturating | minimax | wasserstein | hinge
  c.gan.n_critic = 1  # critic updates per generator update, each on 1/n_critic of the batch
  c.gan.gp_weight = 0.0  # WGAN-GP's lambda (10); needs model.critic=True
  c.gan.r1_weight = 0.0  # R1's gamma; needs model.critic=True
  c.gan.d_lr = 0.0  # > 0 overrides optim.lr for the discriminator / the generator
  c.gan.g_lr = 0.0
  c.gan.ema_decay = 0.999  # moving average of the generator's weights, for sampling; 0: off
  c.gan.sample_bn = "batch"  # batch-norm statistics when sampling: batch | running
  c.evals.test = evaluators.spec("metrics")
  c.evals.samples = evaluators.spec("sample_grid")
  c.evals.scores = evaluators.spec("fid")


def check(config) -> None:
  """Config errors that need no data, raised before anything is built."""
  g = config.gan
  if g.loss not in LOSSES:
    raise ConfigError(f"gan.loss={g.loss!r}; valid: {', '.join(LOSSES)}.")
  if g.n_critic < 1:
    raise ConfigError(f"gan.n_critic={g.n_critic}: the critic needs at least one update per step "
                      "(1 for DCGAN, 5 for WGAN-GP).")
  if (g.gp_weight > 0 or g.r1_weight > 0) and not config.model.get("critic", False):
    raise ConfigError("gan.gp_weight / gan.r1_weight penalise per-example input gradients, which "
                      "batch norm in the discriminator mixes across the batch: set "
                      "model.critic=True (no batch norm) or the weights to 0.")
  if not 0.0 <= g.ema_decay < 1.0:
    raise ConfigError(f"gan.ema_decay={g.ema_decay} must be in [0, 1) (0: no average).")
  if g.sample_bn not in SAMPLE_BN:
    raise ConfigError(f"gan.sample_bn={g.sample_bn!r}; valid: {', '.join(SAMPLE_BN)}.")


def _player_optim(config, lr: float):
  c = config.optim.copy_and_resolve_references()
  if lr > 0:
    c.lr = lr
  return c


def make(config) -> Task:
  check(config)
  g = config.gan
  model = models.get_model(config.model)
  if not hasattr(model, "generate"):
    raise ConfigError(f"task 'gan' needs a model with generate/discriminate methods (dcgan); got "
                      f"model.name={config.model.name!r}.")
  conditional = model.num_classes > 0
  d_loss_fn, g_loss_fn = LOSSES[g.loss]
  size = (model.image_size, model.image_size, model.channels)

  def labels_of(batch):
    return batch["label"].astype(jnp.int32) if conditional else None

  def init(rng, spec):
    if tuple(spec["input"].shape[1:]) != size:
      raise ConfigError(
          f"The data's images are {tuple(spec['input'].shape[1:])} but the generator makes "
          f"{size} (model.image_size={model.image_size}, model.channels={model.channels}): set "
          f"the model to the data's size, or resize the data with data.preprocess "
          f"resize({model.image_size}).")
    z = jnp.zeros((2, model.latent_dim))
    labels = jnp.zeros((2,), jnp.int32) if conditional else None
    return dict(model.init({"params": rng}, z, jnp.zeros((2,) + size), labels, train=False))

  def generate(variables, z, labels, train=True):
    """(images, variables with the batch statistics this call updated)."""
    out, mut = model.apply(variables, z, labels, train=train, method=model.generate,
                           mutable=["batch_stats"])
    return out, {**variables, **mut}

  def discriminate(variables, x, labels):
    out, mut = model.apply(variables, x, labels, train=True, method=model.discriminate,
                           mutable=["batch_stats"])
    return out, {**variables, **mut}

  def d_loss(params, state, batch, rng, step):
    del step
    z_rng, a_rng = jax.random.split(rng)
    real, labels = batch["input"], labels_of(batch)
    v = {"params": params, "batch_stats": state["batch_stats"]}
    z = jax.random.normal(z_rng, (real.shape[0], model.latent_dim))
    fake, v = generate(v, z, labels)
    fake = jax.lax.stop_gradient(fake)
    # Real and fake in separate calls, as DCGAN trains: each batch-norm batch is one kind.
    d_real, v = discriminate(v, real, labels)
    d_fake, v = discriminate(v, fake, labels)
    loss = jnp.mean(d_loss_fn(real=d_real, fake=d_fake))
    metrics = {"real_score": jnp.mean(d_real), "fake_score": jnp.mean(d_fake)}
    if g.loss == "wasserstein":
      metrics["wasserstein"] = jnp.mean(d_real) - jnp.mean(d_fake)

    def critic(x):
      return model.apply({"params": params, "batch_stats": v["batch_stats"]}, x, labels,
                         train=True, method=model.discriminate)

    if g.gp_weight > 0:
      alpha = jax.random.uniform(a_rng, (real.shape[0],))
      gp = jnp.mean(losses.gradient_penalty(critic=critic, real=real, fake=fake, alpha=alpha))
      loss, metrics["gradient_penalty"] = loss + g.gp_weight * gp, gp
    if g.r1_weight > 0:
      r1 = jnp.mean(losses.r1_penalty(critic=critic, real=real))
      loss, metrics["r1_penalty"] = loss + 0.5 * g.r1_weight * r1, r1
    return loss, (metrics, {"batch_stats": v["batch_stats"]})

  def g_loss(params, state, batch, rng, step):
    del step
    labels = labels_of(batch)
    v = {"params": params, "batch_stats": state["batch_stats"]}
    z = jax.random.normal(rng, (batch["input"].shape[0], model.latent_dim))
    fake, v = generate(v, z, labels)
    d_fake, v = discriminate(v, fake, labels)
    return jnp.mean(g_loss_fn(fake=d_fake)), ({}, {"batch_stats": v["batch_stats"]})

  def sample(variables, rng, num, labels=None):
    """`num` images in [-1, 1] from the averaged generator (the live one when ema_decay is 0).
    sample_bn="batch" normalises with the sample batch's own statistics: the running ones
    belong to the live weights, not to their average."""
    params = dict(variables["params"])
    if "ema" in variables:
      params["generator"] = variables["ema"]
    v = {"params": params, "batch_stats": variables["batch_stats"]}
    return latent.from_prior(lambda z: generate(v, z, labels, train=g.sample_bn == "batch")[0],
                             rng, num, model.latent_dim)

  def labels(num, grouped):
    """The classes a conditional sampler is asked for: cycled, or grouped in runs of num/K
    (a grid of K rows, one class each); None when unconditional."""
    if not conditional:
      return None
    k = model.num_classes
    return np.repeat(np.arange(k), -(-num // k))[:num] if grouped else np.arange(num) % k

  def metrics(variables, batch, rng):
    """The discriminator's mean score on held-out real images (a drift diagnostic)."""
    del rng
    logits = model.apply({"params": variables["params"], "batch_stats": variables["batch_stats"]},
                         batch["input"], labels_of(batch), train=False,
                         method=model.discriminate)
    mask = batch["mask"].astype(jnp.float32)
    return {"real_score": jnp.sum(logits * mask), "count": jnp.sum(mask)}

  d_optim = _player_optim(config, g.d_lr)
  g_optim = _player_optim(config, g.g_lr)
  players = (Player("discriminator", d_loss, g.n_critic, d_optim),
             Player("generator", g_loss, 1, g_optim))
  return Task(init=init, loss=None, players=players,
              eval_fns={"metrics": metrics, "sample": sample, "labels": labels},
              input_keys=("input", "label") if conditional else ("input",),
              input_help="A class-conditional GAN (model.num_classes > 0) needs a 'label' "
                         "feature; use a labelled data set or set model.num_classes=0.",
              ema_decay=g.ema_decay, ema_of="generator")
