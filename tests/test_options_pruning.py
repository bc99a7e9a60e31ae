"""Magnitude pruning: exact masks, pruned weights stay zero through training, exact resume."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from aigc_jax import optim, train
from aigc_jax.options import pruning
from aigc_jax.errors import ConfigError
from aigc_jax import config as config_lib
from experiments import prune_mnist
from tests import helpers


def _params():
  rng = np.random.default_rng(0)
  return {"a": {"kernel": jnp.asarray(rng.normal(size=(40, 30)), jnp.float32),
                "bias": jnp.asarray(rng.normal(size=(30,)), jnp.float32)},
          "b": {"kernel": jnp.asarray(3 * rng.normal(size=(30, 10)), jnp.float32)}}


def test_global_and_layer_masks_keep_exactly_the_largest_weights():
  params = _params()
  which = {"a": {"kernel": True, "bias": False}, "b": {"kernel": True}}
  ones = jax.tree.map(lambda p: jnp.ones(p.shape, bool), params)
  glob = pruning.prune(params, ones, which, 0.75, "global")
  mags = np.concatenate([np.abs(params["a"]["kernel"]).ravel(),
                         np.abs(params["b"]["kernel"]).ravel()])
  kept = np.concatenate([np.asarray(glob["a"]["kernel"]).ravel(),
                         np.asarray(glob["b"]["kernel"]).ravel()])
  assert kept.sum() == round(0.25 * mags.size)
  assert mags[kept].min() > mags[~kept].max()  # the largest magnitudes, over both layers
  assert np.asarray(glob["a"]["bias"]).all()  # not prunable: untouched
  # b's weights are 3x larger: a global threshold keeps more of them than of a's.
  assert np.mean(glob["b"]["kernel"]) > np.mean(glob["a"]["kernel"])
  layer = pruning.prune(params, ones, which, 0.75, "layer")
  for k in ("a", "b"):
    assert np.asarray(layer[k]["kernel"]).mean() == pytest.approx(0.25, abs=1e-3)
  # A later round on the pruned weights (zeros) only removes more: pruned ones stay pruned.
  zeroed = jax.tree.map(lambda p, m: jnp.where(m, p, 0), params, glob)
  more = pruning.prune(zeroed, glob, which, 0.9, "global")
  for m0, m1 in zip(jax.tree.leaves(glob), jax.tree.leaves(more)):
    assert not np.any(np.asarray(m1) & ~np.asarray(m0))
  assert pruning.kept_fractions(more, which)["all"] == pytest.approx(0.1, abs=1e-3)


def _pruned_config(tfds_dir):
  c = helpers.tiny_config(tfds_dir, num_steps=16, log_every_steps=4, eval_every_steps=8,
                          checkpoint_every_steps=4)
  c.prune.update(enabled=True, rounds=((4, 0.5), (10, 0.8)), scope="global")
  c.optim.lr_drops = ((4, 0.1),)
  return c


def test_pruned_weights_stay_zero_and_resume_is_exact(tfds_dir, tmp_path, monkeypatch):
  c = _pruned_config(tfds_dir)
  s1, s2 = helpers.crash_and_resume(c, tmp_path, monkeypatch, after_batches=11)
  assert s1 == s2
  assert s1["sparsity"] == pytest.approx(0.8, abs=1e-3)
  _, state = helpers.final_state(str(tmp_path / "crashed"))
  masks, params = state["masks"], state["params"]
  for p, m in zip(jax.tree.leaves(params), jax.tree.leaves(masks)):
    assert np.all(p[~m] == 0)  # exactly zero after 6 more optimiser steps with momentum
  kernels = [np.asarray(m).ravel() for path, m in jax.tree_util.tree_flatten_with_path(masks)[0]
             if "kernel" in jax.tree_util.keystr(path)]
  assert np.concatenate(kernels).mean() == pytest.approx(0.2, abs=1e-3)
  biases = [m for path, m in jax.tree_util.tree_flatten_with_path(masks)[0]
            if "bias" in jax.tree_util.keystr(path)]
  assert biases and all(np.asarray(m).all() for m in biases)  # only kernels are pruned
  logged = helpers.metrics(str(tmp_path / "straight"), "prune")
  assert [(m["step"], m["sparsity"]) for m in logged] == [(4, 0.5), (10, 0.8)]
  train_logs = helpers.metrics(str(tmp_path / "straight"))
  assert train_logs[0]["lr"] == pytest.approx(3e-3) and train_logs[-1]["lr"] == pytest.approx(3e-4)


def test_bad_pruning_settings_are_refused(tfds_dir, tmp_path):
  c = _pruned_config(tfds_dir)
  for rounds, match in ((((4, 1.0),), r"sparsity 1.0 is outside \[0, 1\)"),
                        (((4, -0.1),), r"outside \[0, 1\)"),
                        (((4, 0.8), (8, 0.5)), "must not decrease"),
                        ((), "no prune.rounds")):
    c.prune.rounds = rounds
    with pytest.raises(ConfigError, match=match):
      train.run(c, str(tmp_path / "x"))
  c.prune.update(rounds=((4, 0.5),), params="no_such_layer")
  with pytest.raises(ConfigError, match="matches no matrix or kernel"):
    train.run(c, str(tmp_path / "y"))
  c.prune.update(params="kernel$", scope="row")
  with pytest.raises(ConfigError, match="prune.scope='row'"):
    train.run(c, str(tmp_path / "z"))


def test_lr_drops_scale_the_schedule():
  c = config_lib.get_config().optim
  c.update(lr=1.0, schedule="constant", lr_drops=((10, 0.1), (20, 0.5)))
  s = optim.make_schedule(c, 100)
  assert [float(s(t)) for t in (0, 9, 10, 19, 20, 99)] == pytest.approx(
      [1.0, 1.0, 0.1, 0.1, 0.05, 0.05])
  c.lr_drops = ((10, 0.0),)
  with pytest.raises(ConfigError, match="factor > 0"):
    optim.make_schedule(c, 100)


def test_prune_experiment_configs():
  for v in ("lenet300", "lenet5", "quick"):
    c = prune_mnist.get_config(v)
    assert [s for _, s in c.prune.rounds] == list(prune_mnist.SPARSITIES)
    assert c.optim.lr_drops[0][0] == c.prune.rounds[0][0]
    assert all(r[0] % c.train.eval_every_steps == 0 for r in c.prune.rounds)
  assert isinstance(prune_mnist.get_config("lenet5").model, ml_collections.ConfigDict)


def test_prune_study_intervals():
  # Clopper-Pearson with no errors has the closed form 1 - (alpha/2)^(1/n) for its upper end.
  lo, hi = prune_mnist.binomial_ci(0, 2000)
  assert lo == 0.0 and abs(hi - 100 * (1 - 0.025 ** (1 / 2000))) < 1e-9
  # 90 errors in 2,000: Clopper-Pearson's ends are beta quantiles.
  from scipy import stats  # pylint: disable=import-outside-toplevel
  lo, hi = prune_mnist.binomial_ci(90, 2000)
  assert abs(lo - 100 * stats.beta.ppf(0.025, 90, 1911)) < 1e-6
  assert abs(hi - 100 * stats.beta.ppf(0.975, 91, 1910)) < 1e-6
  # Two error rates 3 images apart on 2,000 each: the difference's interval spans zero.
  lo, hi = prune_mnist.difference_ci(87, 90, 2000)
  assert lo < 0 < hi and abs((lo + hi) / 2 - 0.15) < 1e-9
  c = prune_mnist.get_config("lenet300")
  assert tuple(c.seeds) == (0, 1, 2) and c.runner == "experiments.prune_mnist:study"
