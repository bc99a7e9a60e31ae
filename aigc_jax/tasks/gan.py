"""Generative adversarial networks on the task seam: two players, one jitted step.

The discriminator (critic) and the generator are players with their own optimisers; the step
makes `gan.n_critic` critic updates, each on its own 1/n_critic of the batch, then one generator
update (step.py). An exponential moving average of the generator's weights is kept in the state
and used for sampling. Batch-norm statistics, both optimiser states and the average are all in
the checkpoint, so a resumed run continues exactly.

Each evaluation writes a grid of samples from fixed noise to DIR/samples/ and, with
`gan.eval_samples` > 0, scores that many samples with the project's own classifier
(evaluators/fid.py): FID against the training split, Inception Score, and the class histogram,
next to the real held-out split's values (the floor a perfect generator would reach).
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from aigc_jax import losses, models
from aigc_jax.data import pipeline
from aigc_jax.errors import ConfigError
from aigc_jax.evaluators import fid as fid_lib, grid
from aigc_jax.tasks import Player, Task

LOSSES = {  # name -> (discriminator loss, generator loss)
    "nonsaturating": (losses.gan_d_minimax, losses.gan_g_nonsaturating),
    "minimax": (losses.gan_d_minimax, losses.gan_g_minimax),
    "wasserstein": (losses.wasserstein_d, losses.wasserstein_g),
    "hinge": (losses.hinge_d, losses.hinge_g),
}
SAMPLE_BN = ("batch", "running")


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
  if g.eval_samples < 0:
    raise ConfigError(f"gan.eval_samples={g.eval_samples} must be >= 0 (0: no FID/IS).")


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

  def d_loss(params, state, batch, rng):
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

  def g_loss(params, state, batch, rng):
    labels = labels_of(batch)
    v = {"params": params, "batch_stats": state["batch_stats"]}
    z = jax.random.normal(rng, (batch["input"].shape[0], model.latent_dim))
    fake, v = generate(v, z, labels)
    d_fake, v = discriminate(v, fake, labels)
    return jnp.mean(g_loss_fn(fake=d_fake)), ({}, {"batch_stats": v["batch_stats"]})

  def sample(variables, z, labels=None):
    """Images in [-1, 1] from the averaged generator (the live one when ema_decay is 0).
    sample_bn="batch" normalises with the sample batch's own statistics: the running ones
    belong to the live weights, not to their average."""
    params = dict(variables["params"])
    if "ema" in variables:
      params["generator"] = variables["ema"]
    v = {"params": params, "batch_stats": variables["batch_stats"]}
    return generate(v, z, labels, train=g.sample_bn == "batch")[0]

  def eval_step(variables, batch):
    """The discriminator's mean score on held-out real images (a drift diagnostic)."""
    logits = model.apply({"params": variables["params"], "batch_stats": variables["batch_stats"]},
                         batch["input"], labels_of(batch), train=False,
                         method=model.discriminate)
    mask = batch["mask"].astype(jnp.float32)
    return {"real_score": jnp.sum(logits * mask), "count": jnp.sum(mask)}

  scorer = _Scorer(config, model, sample) if g.eval_samples > 0 else None
  fixed_z = jax.random.normal(jax.random.PRNGKey(config.seed + 1), (100 if conditional else 64,
                                                                    model.latent_dim))
  fixed_labels = jnp.repeat(jnp.arange(10) % max(model.num_classes, 1), 10) \
      if conditional else None
  sample_jit = jax.jit(sample)

  def on_eval(variables, step, workdir):
    images = jax.device_get(sample_jit(variables, fixed_z, fixed_labels))
    if jax.process_index() == 0:  # rows of one class each when conditional
      grid.save(images, os.path.join(workdir, "samples", f"step_{step:06d}.png"),
                ncol=10 if conditional else 8)
    return scorer(variables, step, workdir) if scorer else {}

  d_optim = _player_optim(config, g.d_lr)
  g_optim = _player_optim(config, g.g_lr)
  players = (Player("discriminator", d_loss, g.n_critic, d_optim),
             Player("generator", g_loss, 1, g_optim))
  return Task(init=init, loss=None, eval_step=eval_step, players=players,
              eval_fns={"sample": sample}, on_eval=on_eval,
              input_keys=("input", "label") if conditional else ("input",),
              input_help="A class-conditional GAN (model.num_classes > 0) needs a 'label' "
                         "feature; use a labelled data set or set model.num_classes=0.",
              ema_decay=g.ema_decay, ema_of="generator")


class _Scorer:
  """FID / IS / class histogram of generated samples, with the real data's values beside them.

  The real statistics are computed once: features of the training split (the FID reference)
  and of the held-out split (the real-versus-real floor, and the real Inception Score).
  Generated FID is reported at the held-out split's size (`fid`, the like-for-like comparison
  with `fid_floor`, since FID's bias shrinks with the number of samples) and over all
  `gan.eval_samples` (`fid_all`).
  """

  def __init__(self, config, model, sample):
    self.config, self.model = config, model
    self.classifier = fid_lib.Classifier(fid_lib.classifier_workdir(config))
    real = {}
    for split in (config.data.train_split, config.data.eval_split):
      data = pipeline.load_split(config.data, split)
      images = data.load(np.arange(len(data)))["input"]
      real[split] = self.classifier.score((np.asarray(images, np.float32) + 1.0) / 2.0)
    self.ref = fid_lib.gaussian(real[config.data.train_split][0])
    held_feats, held_probs = real[config.data.eval_split]
    self.n_held = len(held_feats)
    self.real = {"fid_floor": fid_lib.frechet_distance(*self.ref, *fid_lib.gaussian(held_feats)),
                 "is_real": fid_lib.inception_score(held_probs)}
    print(f"Real data under the classifier: IS {self.real['is_real']:.3f} (held-out split), "
          f"FID floor {self.real['fid_floor']:.3f} (held-out vs training split)", flush=True)
    k = model.num_classes

    @jax.jit
    def sample_and_score(variables, key, labels):
      z = jax.random.normal(key, (config.data.eval_batch_size, model.latent_dim))
      images = sample(variables, z, labels)
      return self.classifier((images + 1.0) / 2.0)

    self.sample_and_score = sample_and_score
    self.labels = (np.arange(config.gan.eval_samples) % k) if k else None

  def __call__(self, variables, step, workdir) -> dict:
    n, b = self.config.gan.eval_samples, self.config.data.eval_batch_size
    key = jax.random.PRNGKey(self.config.seed + 2)  # the same noise at every evaluation
    feats, probs = [], []
    for i in range(-(-n // b)):
      labels = None if self.labels is None else jnp.asarray(
          np.resize(self.labels[i * b:(i + 1) * b], b), jnp.int32)
      f, p = jax.device_get(self.sample_and_score(variables, jax.random.fold_in(key, i), labels))
      feats.append(f)
      probs.append(p)
    feats, probs = np.concatenate(feats)[:n], np.concatenate(probs)[:n]
    hist = fid_lib.class_histogram(probs)
    out = dict(self.real)
    out["fid"] = fid_lib.frechet_distance(*self.ref, *fid_lib.gaussian(feats[:self.n_held]))
    out["fid_all"] = fid_lib.frechet_distance(*self.ref, *fid_lib.gaussian(feats))
    out["is"] = fid_lib.inception_score(probs)
    out["is_ratio"] = out["is"] / out["is_real"]
    out["fid_ratio"] = out["fid"] / max(out["fid_floor"], 1e-12)
    out["class_min"], out["class_max"] = float(hist.min()), float(hist.max())
    if self.labels is not None:
      out["label_agreement"] = float(np.mean(probs.argmax(axis=1) == self.labels[:n]))
    if jax.process_index() == 0:
      record = {"step": int(step), "samples": n, "class_fractions": hist.round(4).tolist(), **out}
      path = os.path.join(workdir, "samples", f"scores_step_{step:06d}.json")
      os.makedirs(os.path.dirname(path), exist_ok=True)
      with open(path, "w") as f:
        json.dump(record, f, indent=1)
    return out
