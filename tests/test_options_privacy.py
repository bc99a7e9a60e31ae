"""DP-SGD: clipping bounds each example's influence, the noise has the stated scale, the
accountant reproduces the published epsilon, runs report epsilon and resume exactly."""

import types

import dp_accounting
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aigc_jax import options, train
from aigc_jax.options import privacy
from aigc_jax.errors import ConfigError
from aigc_jax.tasks import get_task
from experiments import dcgan_mnist, dp_mnist
from tests import helpers


def test_published_epsilon_is_reproduced():
  """TensorFlow Privacy's tutorial: N = 60,000, batch 256, noise 1.12, 60 epochs, delta 1e-5
  gives epsilon = 2.92 (Renyi DP at its orders, classic conversion)."""
  steps = int(np.ceil(60 * 60000 / 256))
  eps = privacy.epsilons(256 / 60000, 1.12, steps, 1e-5)
  assert round(eps["rdp_classic"], 2) == 2.92
  assert eps["pld"] < eps["rdp"] < eps["rdp_classic"]  # tighter accountants, same mechanism
  # "rdp" is the same RDP curve (the one that gave the published 2.92) converted with Canonne,
  # Kamath and Steinke's bound (2020, Prop. 12), computed here from the formula:
  #   eps = min_a  RDP(a) + log((a - 1) / a) - (log(delta) + log(a)) / (a - 1)
  event = dp_accounting.SelfComposedDpEvent(dp_accounting.PoissonSampledDpEvent(
      256 / 60000, dp_accounting.GaussianDpEvent(1.12)), steps)
  acc = dp_accounting.rdp.RdpAccountant(list(privacy.ORDERS))
  acc.compose(event)
  a, curve = np.asarray(privacy.ORDERS), np.asarray(acc._rdp)  # pylint: disable=protected-access
  improved = curve + np.log((a - 1) / a) - (np.log(1e-5) + np.log(a)) / (a - 1)
  assert eps["rdp"] == pytest.approx(max(float(improved.min()), 0.0), rel=1e-6)
  sigma = privacy.noise_for_epsilon(2.92, 256 / 60000, steps, 1e-5)
  assert 1.11 <= sigma <= 1.13  # calibrating noise to a budget inverts the same curve


def _task_and_params(tfds_dir):
  c = helpers.tiny_config(tfds_dir)
  task = get_task(c)
  from aigc_jax.data import pipeline  # pylint: disable=import-outside-toplevel
  split = pipeline.load_train_split(c.data, 0)
  batch = split.load(np.arange(16))
  batch = {k: jnp.asarray(v) for k, v in batch.items()}
  variables = task.init(jax.random.PRNGKey(0), jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), batch))
  params = jax.tree.map(lambda x: getattr(x, "value", x), variables["params"],
                        is_leaf=lambda x: hasattr(x, "value"))
  model_state = {k: v for k, v in variables.items() if k != "params"}
  return c, task, params, model_state, batch


def test_clipping_bounds_each_examples_influence(tfds_dir):
  """Replacing one example by an outlier (a wrong label, its input scaled 100x) changes the
  clipped gradient sum by at most 2 x clip, whatever the outlier; unclipped, far more."""
  c, task, params, model_state, batch = _task_and_params(tfds_dir)

  def loss_fn(p, ms, mb, key):
    return task.loss(p, ms, mb, key, 0)

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  clip = 0.05
  other = dict(batch, input=batch["input"].at[3].multiply(100.0),
               label=batch["label"].at[3].set((batch["label"][3] + 1) % 10))
  sums, norms = [], []
  for b in (batch, other):
    _, _, summed, clipped, mean_norm = privacy.clipped_grad_sum(
        grad_fn, params, model_state, b, jax.random.PRNGKey(1), clip)
    sums.append(summed)
    norms.append(float(mean_norm))
    assert float(clipped) > 0.5  # most examples' gradients are above this small clip
  diff = jnp.sqrt(sum(jnp.sum((a - b) ** 2) for a, b in zip(jax.tree.leaves(sums[0]),
                                                            jax.tree.leaves(sums[1]))))
  assert 0 < float(diff) <= 2 * clip + 1e-6
  assert norms[1] * 16 - norms[0] * 16 > 10 * clip  # the outlier's own gradient is much larger
  # One example alone: its clipped gradient has norm exactly min(norm, clip).
  one = jax.tree.map(lambda x: x[:1], other)
  _, _, summed, _, n1 = privacy.clipped_grad_sum(grad_fn, params, model_state, one,
                                                 jax.random.PRNGKey(1), clip)
  norm = jnp.sqrt(sum(jnp.sum(g ** 2) for g in jax.tree.leaves(summed)))
  np.testing.assert_allclose(float(norm), min(float(n1), clip), rtol=1e-5)


def test_noise_has_the_stated_scale():
  zeros = {"w": jnp.zeros((200, 100)), "b": jnp.zeros((1000,))}
  noisy = privacy.add_noise(zeros, jax.random.PRNGKey(0), 0.1, 1.5, 50)
  for g in jax.tree.leaves(noisy):
    np.testing.assert_allclose(float(jnp.std(g)), 1.5 * 0.1 / 50, rtol=0.06)
  assert abs(float(jnp.mean(noisy["w"]))) < 1e-4


def test_dp_run_reports_epsilon_and_resumes_exactly(tfds_dir, tmp_path, monkeypatch):
  c = helpers.tiny_config(tfds_dir, num_steps=12, log_every_steps=4, eval_every_steps=6,
                          checkpoint_every_steps=4)
  c.dp.update(enabled=True, clip=0.5, noise_multiplier=1.1, delta=1e-5)
  s1, s2 = helpers.crash_and_resume(c, tmp_path, monkeypatch, after_batches=6)
  assert s1 == s2
  n = 3500  # MNIST-1D's training split (the 4,000 less the 500 validation sequences)
  want = privacy.epsilons(64 / n, 1.1, 12, 1e-5)
  assert s1["epsilon"] == pytest.approx(want["rdp_classic"]) and s1["delta"] == 1e-5
  assert s1["epsilon_by_accountant"] == pytest.approx(want)
  logged = helpers.metrics(str(tmp_path / "straight"))
  assert [round(m["epsilon"], 6) for m in logged] == [
      round(privacy.epsilons(64 / n, 1.1, s, 1e-5, ("rdp_classic",))["rdp_classic"], 6)
      for s in (4, 8, 12)]
  assert all(0 <= m["dp_clipped_fraction"] <= 1 for m in logged)
  # DP changes the update: the same run without it ends elsewhere.
  c.dp.enabled = False
  plain = train.run(c, str(tmp_path / "plain"))
  assert "epsilon" not in plain
  assert plain["test_loss"] != s1["test_loss"]


def test_bad_dp_settings_are_refused_before_compiling(tfds_dir, data_dir, tmp_path):
  c = helpers.tiny_config(tfds_dir)
  c.dp.update(enabled=True, noise_multiplier=0.0)
  with pytest.raises(ConfigError, match="noise_multiplier=0.0 must be > 0"):
    train.run(c, str(tmp_path / "a"))
  c.dp.update(noise_multiplier=1.0, clip=-1.0)
  with pytest.raises(ConfigError, match="dp.clip=-1.0 must be > 0"):
    train.run(c, str(tmp_path / "b"))
  c.dp.update(clip=1.0, accountant="moments")
  with pytest.raises(ConfigError, match="dp.accountant='moments'"):
    train.run(c, str(tmp_path / "c"))
  g = dcgan_mnist.get_config("quick")
  g.data.update(tfds_dir=tfds_dir, data_dir=data_dir)
  g.dp.update(enabled=True)
  with pytest.raises(ConfigError, match="batch normalisation|single-loss"):
    train.run(g, str(tmp_path / "d"))


def test_batch_norm_models_are_refused(tfds_dir):
  """Per-example gradients of a batch-norm model are not per-example: the check says why."""
  c = helpers.tiny_config(tfds_dir)
  c.dp.enabled = True
  active = privacy.setup(c, options.Run(c, types.SimpleNamespace(players=()), None, None, 64))
  with pytest.raises(ConfigError, match="batch normalisation, which mixes the examples"):
    active.check_state(types.SimpleNamespace(model_state={"batch_stats": {}}))
  active.check_state(types.SimpleNamespace(model_state={}))  # no batch norm: fine


def test_target_epsilon_calibrates_the_noise_to_the_real_training_split():
  """dp_mnist states budgets, not noise: the noise is found when the run starts, for the split's
  size, so a smaller carve gets more noise and the same epsilon."""
  for variant, target in (("eps3", 3.0), ("eps8", 8.0)):
    c = dp_mnist.get_config(variant)
    noises = []
    for n in (7000, 60000):
      split = type("Split", (), {"__len__": lambda self, n=n: n})()
      active = privacy.setup(c, options.Run(c, types.SimpleNamespace(players=()), None, split,
                                            dp_mnist.BATCH))
      summary = active.summary(None, -(-int(c.train.num_epochs * n) // dp_mnist.BATCH))
      assert target * 0.98 < summary["epsilon"] <= target, (variant, n, summary)
      assert summary["dp_sampling_rate"] == dp_mnist.BATCH / n
      noises.append(summary["dp_noise_multiplier"])
    assert noises[0] > noises[1]  # fewer examples, a larger sampled fraction: more noise
  assert not dp_mnist.get_config("nonprivate").dp.enabled
  c = dp_mnist.get_config("eps3")
  c.dp.target_epsilon = -1.0
  with pytest.raises(ConfigError, match="dp.target_epsilon=-1.0 must be > 0"):
    privacy.check(c)
