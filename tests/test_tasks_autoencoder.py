"""Autoencoder and VAE tasks end to end on real MNIST: losses, bounds, grids, probes, errors."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aigc_jax import losses, train
from aigc_jax.errors import ConfigError
from aigc_jax.tasks import get_task
from experiments import ae_mnist, vae_mnist
from tests import helpers


def _tiny(module, data_dir, tfds_dir, arg="quick", steps=20):
  c = module.get_config(arg)
  c.model.update(hidden=(128,), latent_dim=8)
  c.data.update(data_dir=data_dir, tfds_dir=tfds_dir, batch_size=64, eval_batch_size=1000)
  c.optim.lr = 3e-3
  c.train.update(num_epochs=0.0, num_steps=steps, log_every_steps=5, eval_every_steps=10,
                 checkpoint_every_steps=10, progress_bar=False)
  c.evals.probe.l2_grid = (1e-3,)  # one fit: the selection is probe_lib's test
  return c


def test_autoencoder_learns_beats_nothing_and_reports_pca(data_dir, tfds_dir, tmp_path):
  c = _tiny(ae_mnist, data_dir, tfds_dir, steps=200)
  c.train.eval_every_steps = 100
  s = train.run(c, str(tmp_path))
  losses_ = [e["loss"] for e in helpers.metrics(str(tmp_path))]
  assert losses_[-1] < 0.7 * losses_[0]
  # Mean-image reconstruction of MNIST has mse ~0.067; 60 steps must beat it; PCA with 4
  # components, computed by the run, is a real linear baseline below that.
  assert s["test_mse"] < 0.067 and 0.03 < s["pca_mse"] < 0.067 and s["pca_components"] == 8
  assert 0.5 < s["probe_accuracy"] <= 1.0 and 0.5 < s["knn_accuracy"] <= 1.0
  for step in (100, 200):
    assert os.path.exists(tmp_path / "samples" / f"reconstructions_step_{step:06d}.png")
  assert [e["step"] for e in helpers.metrics(str(tmp_path), "probe")] == [200]  # only at the end
  assert [e["step"] for e in helpers.metrics(str(tmp_path), "test")] == [100, 200]


def test_denoising_autoencoder_reconstructs_the_clean_input(data_dir, tfds_dir, tmp_path):
  c = _tiny(ae_mnist, data_dir, tfds_dir, "quick,denoising", steps=10)
  c.train.eval_every_steps = 10
  task = get_task(c)
  x = np.random.default_rng(0).uniform(0, 1, (8, 28, 28)).astype(np.float32)
  variables = task.init(jax.random.PRNGKey(0), {"input": jax.ShapeDtypeStruct(x.shape, x.dtype)})
  clean = task.eval_fns["reconstruct"](variables, {"input": x}, None)
  noisy = task.eval_fns["reconstruct"](variables, {"input": x, "corrupted": x * 0}, None)
  assert not np.allclose(clean, noisy)  # the code is computed from the corrupted input
  s = train.run(c, str(tmp_path))
  assert s["test_mse"] > 0 and c.evals.test.augment == c.augment


def test_vae_bounds_kl_warmup_and_grids(data_dir, tfds_dir, tmp_path):
  c = _tiny(vae_mnist, data_dir, tfds_dir, "quick,warmup", steps=20)
  c.vae.kl_warmup_steps = 10
  c.train.log_every_steps = 1
  c.evals.iwae.update(k=50, chunk=10)
  s = train.run(c, str(tmp_path))
  # The loss sees the step: beta rises linearly over the first 10 steps, then stays at 1.
  beta = [e["beta"] for e in helpers.metrics(str(tmp_path))]
  np.testing.assert_allclose(beta, [min(1.0, i / 10) for i in range(20)], atol=1e-6)
  # IWAE with k samples is a tighter bound than the ELBO over the same samples.
  assert s["iwae_nll"] < s["iwae_neg_elbo"] and s["iwae_gap"] > 0
  assert s["iwae_neg_elbo"] == pytest.approx(s["test_neg_elbo"], rel=0.05)
  assert s["test_neg_elbo"] == pytest.approx(s["test_recon"] + s["test_kl"], rel=1e-5)
  for name in ("samples_step_000020.png", "reconstructions_step_000020.png"):
    assert os.path.exists(tmp_path / "samples" / name)


def test_log_weights_average_to_the_elbo_and_iwae_is_tighter(data_dir, tfds_dir):
  c = _tiny(vae_mnist, data_dir, tfds_dir)
  task = get_task(c)
  rng = np.random.default_rng(0)
  x = (rng.uniform(size=(16, 28, 28)) < 0.3).astype(np.float32)
  v = task.init(jax.random.PRNGKey(1), {"input": jax.ShapeDtypeStruct(x.shape, x.dtype)})
  batch = {"input": x, "mask": np.ones(16, bool)}
  key = jax.random.PRNGKey(2)
  lw = task.eval_fns["log_weights"](v, batch, key, 1)[:, 0]
  # log w = log p(x|z) + log p(z) - log q(z|x) at the same z: its mean over z is -(rec + KL).
  lw_many = task.eval_fns["log_weights"](v, batch, key, 4000)
  sums = task.eval_fns["metrics"](v, batch, key)
  assert lw.shape == (16,)
  assert float(-jnp.mean(lw_many)) == pytest.approx(float(sums["neg_elbo"]) / 16, rel=0.01)
  iwae = jax.nn.logsumexp(lw_many, axis=1) - math.log(4000)
  assert np.all(np.asarray(iwae) >= np.asarray(jnp.mean(lw_many, axis=1)))


def test_latent_walk_needs_a_2d_latent(data_dir, tfds_dir, tmp_path):
  c = _tiny(vae_mnist, data_dir, tfds_dir, "quick,latent2", steps=10)
  c.model.latent_dim = 2
  del c.evals["iwae"], c.evals["probe"], c.evals["knn"], c.evals["train_elbo"]
  train.run(c, str(tmp_path / "ok"))
  assert os.path.exists(tmp_path / "ok" / "samples" / "walk_step_000010.png")
  c.model.latent_dim = 3
  with pytest.raises(ConfigError, match="latent_walk.*latent_dim=3"):
    train.run(c, str(tmp_path / "bad"))


def test_bernoulli_likelihood_outside_unit_range_is_an_error(data_dir, tfds_dir, tmp_path):
  c = _tiny(ae_mnist, data_dir, tfds_dir)
  c.autoencoder.likelihood = "bernoulli"
  c.data.preprocess = "value_range(-1, 1)|rename(image='input')"
  with pytest.raises(ConfigError, match=r"needs data in \[0, 1\].*\[-1, 1\].*value_range\(0, 1\)"):
    train.run(c, str(tmp_path / "ae"))
  c = _tiny(vae_mnist, data_dir, tfds_dir)
  c.data.preprocess = "rename(image='input')"  # uint8 0..255
  with pytest.raises(ConfigError, match="needs data in"):
    train.run(c, str(tmp_path / "vae"))


def test_bernoulli_and_kl_against_hand_values():
  logits = jnp.array([[0.0, 2.0]])
  targets = jnp.array([[1.0, 0.0]])
  want = -(math.log(0.5) + math.log(1 - 1 / (1 + math.exp(-2.0))))
  assert float(losses.bernoulli_nll(logits=logits, targets=targets)[0]) == pytest.approx(want)
  mean, logvar = jnp.array([[1.0, 0.0]]), jnp.array([[0.0, math.log(4.0)]])
  # 0.5 * (1 + 0 - 1 - 0) + 0.5 * (0 + 4 - 1 - log 4)
  want = 0.5 + 0.5 * (3 - math.log(4.0))
  assert float(losses.gaussian_kl(mean=mean, log_variance=logvar)[0]) == pytest.approx(want)
