"""DP-SGD (Abadi et al. 2016) as an option of the one train step, and its privacy accounting.

`config.dp.enabled` turns it on (the option's keys: DEFAULTS below). Each example's gradient (jax.vmap over the batch)
is scaled to an L2 norm of at most `dp.clip`; the clipped gradients are summed, Gaussian noise of
standard deviation `noise_multiplier x clip` is added to the sum once per step, and the result is
divided by the batch size. With gradient accumulation the sums of the micro-batches are added
before the noise, so the step is the same.

Sampling: batches are fixed-size draws from a per-epoch shuffle, and the accountant treats each
step as Poisson sampling with rate q = batch / N, as TensorFlow Privacy's tutorials and most
published DP-SGD results do. (Exact Poisson sampling would need variable batch shapes.)

Accounting (dp_accounting): the Renyi DP of the Poisson-subsampled Gaussian mechanism (Mironov
2017) at TensorFlow Privacy's orders. `dp.accountant`:
- "rdp_classic": converted with eps = min_a RDP(a) + log(1/delta) / (a - 1), the bound the
  published numbers used (N=60,000, batch 256, sigma 1.12, 60 epochs, delta 1e-5: eps = 2.92);
- "rdp": dp_accounting's tighter conversion of the same RDP curve (2.52 for that run);
- "pld": privacy loss distributions, tighter still (2.31).
Every run reports all three; `dp.accountant` picks the headline `epsilon`. The noise is drawn
from the step's key, so a resumed run adds the same noise and the accountant needs no state: it
is a function of the number of steps taken.
"""

import functools
import logging
import math

import jax
import jax.numpy as jnp
import numpy as np

from aigc_jax import step as step_lib
from aigc_jax.errors import ConfigError
from aigc_jax.options import Active

ACCOUNTANTS = ("rdp_classic", "rdp", "pld")
NOISE_STREAM = 0xD9  # the noise key is fold_in(step key, this): the loss's key is unchanged
DEFAULTS = {
    # Per-example gradients clipped to `clip`, Gaussian noise of noise_multiplier x clip on
    # their sum; epsilon at `delta` by `accountant` (rdp_classic, rdp, pld) is logged and
    # written into summary.json.
    # target_epsilon > 0 replaces noise_multiplier: the smallest noise whose epsilon after the
    # run's steps is at most the target, for the training split's real size and the batch,
    # found when the run starts (a carve or a corpus of another size keeps its budget).
    "dp": {"enabled": False, "clip": 1.0, "noise_multiplier": 1.0, "delta": 1e-5,
           "accountant": "rdp_classic", "target_epsilon": 0.0},
}
# TensorFlow Privacy's default RDP orders.
ORDERS = tuple([1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)))


def enabled(dp_config) -> bool:
  return dp_config is not None and bool(dp_config.get("enabled", False))


def check(config) -> None:
  """Refuses settings DP-SGD cannot honour, before anything is read or compiled."""
  dp_config = config.dp
  if not enabled(dp_config):
    return
  if dp_config.get("target_epsilon", 0.0) < 0:
    raise ConfigError(f"dp.target_epsilon={dp_config.target_epsilon} must be > 0, or 0 to use "
                      "dp.noise_multiplier as given.")
  if not dp_config.get("target_epsilon", 0.0) and not dp_config.noise_multiplier > 0:
    raise ConfigError(f"dp.noise_multiplier={dp_config.noise_multiplier} must be > 0: without "
                      "noise clipping alone gives no privacy (turn DP off with dp.enabled=False).")
  if not dp_config.clip > 0:
    raise ConfigError(f"dp.clip={dp_config.clip} must be > 0: the L2 norm each example's "
                      "gradient is clipped to.")
  if not 0.0 < dp_config.delta < 1.0:
    raise ConfigError(f"dp.delta={dp_config.delta} must be in (0, 1); use about 1 / N or less.")
  if dp_config.accountant not in ACCOUNTANTS:
    raise ConfigError(f"dp.accountant={dp_config.accountant!r}; valid: {', '.join(ACCOUNTANTS)}.")
  # Gradient accumulation composes: the micro-batches' sums are added before the noise.


def _no_batch_norm(abstract) -> None:
  if "batch_stats" in (abstract.model_state or {}):
    raise ConfigError(
        "DP-SGD needs each example's gradient on its own, but this model uses batch "
        "normalisation, which mixes the examples of a batch (an example's gradient depends on "
        "the others and clipping no longer bounds its influence). Use a model without batch "
        "norm (e.g. group or layer norm), or turn DP off (dp.enabled=False).")


def accounting(config, sampling_rate: float, noise: float, clip: float) -> dict:
  """The log and summary hooks of a Gaussian mechanism sampled at `sampling_rate` a step, with
  `config.dp`'s delta and accountant: epsilon at every log step, all accountants at the end."""
  dp_config = config.dp

  def log(done: int) -> dict:
    return {"epsilon": epsilons(sampling_rate, noise, done, float(dp_config.delta),
                                (dp_config.accountant,))[dp_config.accountant]}

  def summary(state, num_steps: int) -> dict:
    del state
    eps = epsilons(sampling_rate, noise, num_steps, float(dp_config.delta))
    return dict(epsilon=eps[dp_config.accountant], delta=float(dp_config.delta),
                dp_accountant=dp_config.accountant, epsilon_by_accountant=eps,
                dp_sampling_rate=sampling_rate, dp_noise_multiplier=noise, dp_clip=clip)

  return {"log": log, "summary": summary}


def setup(config, run):
  dp_config = config.dp
  if not enabled(dp_config):
    return None
  if run.task.players:
    raise ConfigError("DP-SGD (dp.enabled) is for single-loss tasks; a "
                      "multi-player task (GAN) would need a privacy budget per player.")
  dp = {"clip": float(dp_config.clip), "noise_multiplier": float(dp_config.noise_multiplier)}
  # The accountant's sampling rate: each step draws batch / N of the training examples.
  rate = run.global_batch / len(run.train_split) if run.train_split is not None else 0.0
  target = float(dp_config.get("target_epsilon", 0.0))
  if target > 0 and run.train_split is not None:  # an ahead-of-time compile needs no noise level
    t = run.config.train
    steps = t.num_steps if t.num_steps > 0 else math.ceil(
        t.num_epochs * len(run.train_split) / run.global_batch)
    dp["noise_multiplier"] = noise_for_epsilon(target, rate, steps, float(dp_config.delta),
                                               dp_config.accountant)
    print(f"DP-SGD: noise multiplier {dp['noise_multiplier']} for epsilon <= {target} at delta "
          f"{dp_config.delta}: {len(run.train_split)} examples, batch {run.global_batch}, "
          f"{steps} steps.", flush=True)
  return Active(name="privacy", gradient=functools.partial(gradient, dp=dp),
                check_state=_no_batch_norm,
                **accounting(config, rate, dp["noise_multiplier"], dp["clip"]))


def gradient(task, state, batch, rng, n: int, dp: dict):
  """DP-SGD's gradient: per-example gradients clipped to dp["clip"] and summed (over n
  micro-batches in a scan), Gaussian noise on the sum, divided by the batch size."""
  def loss_fn(params, model_state, mb, key):
    return task.loss(params, model_state, mb, key, state.step)

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def sums(mb, key):
    return clipped_grad_sum(grad_fn, state.params, state.model_state, mb, key,
                                    dp["clip"])

  if n == 1:
    loss, metrics, summed, clipped, norm = sums(batch, rng)
  else:
    def body(acc, xs):
      i, mb = xs
      loss, metrics, g, clipped, norm = sums(mb, jax.random.fold_in(rng, i))
      return jax.tree.map(jnp.add, acc, g), (loss, metrics, clipped, norm)

    zeros = jax.tree.map(jnp.zeros_like, state.params)
    summed, (loss, metrics, clipped, norm) = jax.lax.scan(
        body, zeros, (jnp.arange(n), step_lib.micro_batches(batch, n)))
    loss, metrics, clipped, norm = jax.tree.map(jnp.mean, (loss, metrics, clipped, norm))
  size = jax.tree.leaves(batch)[0].shape[0]
  grads = add_noise(summed, jax.random.fold_in(rng, NOISE_STREAM), dp["clip"],
                            dp["noise_multiplier"], size)
  metrics = dict(metrics, dp_clipped_fraction=clipped, dp_example_grad_norm=norm)
  return loss, metrics, state.model_state, grads


def clipped_grad_sum(grad_fn, params, model_state, batch, rng, clip: float):
  """(mean loss, mean metrics, sum over examples of clipped gradients, fraction clipped,
  mean per-example norm). grad_fn(params, model_state, batch, key) is value_and_grad of the
  task's loss with aux; each example is a batch of one."""
  n = jax.tree.leaves(batch)[0].shape[0]

  def one(example, key):
    single = jax.tree.map(lambda x: x[None], example)
    (loss, (metrics, _)), g = grad_fn(params, model_state, single, key)
    return loss, metrics, g

  keys = jax.random.split(rng, n)
  loss, metrics, grads = jax.vmap(one)(batch, keys)
  norms = jnp.sqrt(sum(jnp.sum(jnp.square(g.astype(jnp.float32)).reshape(n, -1), axis=1)
                       for g in jax.tree.leaves(grads)))
  scale = jnp.minimum(1.0, clip / jnp.maximum(norms, 1e-12))
  summed = jax.tree.map(
      lambda g: jnp.einsum("n,n...->...", scale.astype(g.dtype), g), grads)
  return (jnp.mean(loss), jax.tree.map(jnp.mean, metrics), summed,
          jnp.mean((norms > clip).astype(jnp.float32)), jnp.mean(norms))


def add_noise(summed, rng, clip: float, noise_multiplier: float, batch_size: int):
  """(sum + N(0, (sigma * clip)^2)) / batch size, one independent draw per parameter entry."""
  leaves, tree = jax.tree.flatten(summed)
  keys = jax.random.split(rng, len(leaves))
  noisy = [(g + noise_multiplier * clip * jax.random.normal(k, g.shape, g.dtype)) / batch_size
           for g, k in zip(leaves, keys)]
  return jax.tree.unflatten(tree, noisy)


@functools.lru_cache(maxsize=256)
def epsilons(sampling_rate: float, noise_multiplier: float, steps: int, delta: float,
             which: tuple = ACCOUNTANTS) -> dict:
  """{accountant: epsilon} after `steps` Poisson-subsampled Gaussian steps."""
  import dp_accounting  # pylint: disable=import-outside-toplevel
  if steps == 0:
    return {a: 0.0 for a in which}
  event = dp_accounting.SelfComposedDpEvent(
      dp_accounting.PoissonSampledDpEvent(
          sampling_rate, dp_accounting.GaussianDpEvent(noise_multiplier)), steps)
  out = {}
  absl_log = logging.getLogger("absl")
  level = absl_log.level
  # Orders whose series do not converge are skipped with a warning each; the others decide.
  absl_log.setLevel(logging.ERROR)
  try:
    _compose(event, delta, which, out)
  finally:
    absl_log.setLevel(level)
  return {a: out[a] for a in which}


def _compose(event, delta: float, which: tuple, out: dict) -> None:
  from dp_accounting import pld, rdp  # pylint: disable=import-outside-toplevel
  if "rdp_classic" in which or "rdp" in which:
    acc = rdp.RdpAccountant(list(ORDERS))
    acc.compose(event)
    curve = np.asarray(acc._rdp)  # pylint: disable=protected-access
    orders = np.asarray(ORDERS)
    out["rdp_classic"] = float(np.min(curve + np.log(1.0 / delta) / (orders - 1.0)))
    out["rdp"] = float(acc.get_epsilon(delta))
  if "pld" in which:
    p = pld.PLDAccountant()
    p.compose(event)
    out["pld"] = float(p.get_epsilon(delta))


def epsilon(dp_config, sampling_rate: float, steps: int) -> float:
  """The configured accountant's epsilon after `steps` steps."""
  return epsilons(sampling_rate, float(dp_config.noise_multiplier), int(steps),
                  float(dp_config.delta), (dp_config.accountant,))[dp_config.accountant]


def noise_for_epsilon(target: float, sampling_rate: float, steps: int, delta: float,
                      accountant: str = "rdp_classic") -> float:
  """The smallest noise multiplier (to 3 significant digits, rounded up) whose epsilon after
  `steps` is at most `target`: a budget stated as epsilon becomes a setting of the step."""
  if not target > 0:
    raise ConfigError(f"A target epsilon must be > 0, got {target}.")

  def eps(sigma):
    return epsilons(sampling_rate, sigma, int(steps), delta, (accountant,))[accountant]

  lo, hi = 0.3, 1.0
  while eps(hi) > target:
    lo, hi = hi, hi * 2
    if hi > 1e4:
      raise ConfigError(f"No noise multiplier reaches epsilon {target} in {steps} steps.")
  for _ in range(40):
    mid = (lo + hi) / 2
    lo, hi = (lo, mid) if eps(mid) <= target else (mid, hi)
  digits = 2 - int(np.floor(np.log10(hi)))
  return float(np.ceil(hi * 10**digits) / 10**digits)
