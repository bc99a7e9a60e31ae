"""Latent diffusion: a spatial autoencoder's codes diffused, its weights loaded once and kept
bit for bit, the run's workdir sampling without it; the compositions scorer reading that
autoencoder's reconstructions; and the errors of a first stage that cannot work."""

import os
import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from aigc_jax import checkpoint, models, train
from aigc_jax.data import pipeline
from aigc_jax.errors import ConfigError
from aigc_jax.evaluators import compositions
from aigc_jax.evaluators import fid as fid_lib
from aigc_jax.tasks import diffusion
from experiments import ae_captions, flow_mnist, t2i_mnist
from tests import helpers

SMALL_AE = dict(hidden=(8, 8), latent_dim=2)  # 56x56x1 images -> 14x14x2 codes


def _data(c, data_dir, tfds_dir):
  c.data.update(data_dir=data_dir, tfds_dir=tfds_dir, eval_batch_size=40)
  c.data.captions.update(train_size=1_000, eval_size=200)


@pytest.fixture(scope="module")
def classifier(data_dir, tfds_dir, tmp_path_factory):
  return helpers.train_classifier(data_dir, tfds_dir, str(tmp_path_factory.mktemp("scorer")))


@pytest.fixture(scope="module")
def first_stage(data_dir, tfds_dir, classifier, tmp_path_factory):
  """(workdir, summary, config) of a small ae_captions run scored by `recon_seen`."""
  c = ae_captions.get_config("quick")
  c.model.update(**SMALL_AE)
  _data(c, data_dir, tfds_dir)
  c.train.update(num_steps=60, log_every_steps=20, eval_every_steps=60,
                 checkpoint_every_steps=60, progress_bar=False, best_metric="")
  c.evals = {"recon_seen": c.evals.recon_seen}
  c.evals.recon_seen.update(samples=40, classifier_workdir=classifier)
  workdir = str(tmp_path_factory.mktemp("ae"))
  return workdir, train.run(c, workdir), c


def _t2i(ae_dir, data_dir, tfds_dir):
  c = t2i_mnist.get_config("latent_quick")
  c.diffusion.autoencoder.model.update(**SMALL_AE)
  c.diffusion.autoencoder.workdir = ae_dir
  c.model.update(channels=2, width=16, num_res_blocks=1, groups=4, heads=2)
  c.model.text.update(num_layers=1, width=32)
  _data(c, data_dir, tfds_dir)
  c.train.update(num_steps=4, log_every_steps=2, eval_every_steps=4, checkpoint_every_steps=4,
                 progress_bar=False, best_metric="")
  c.sampler.steps = 2
  c.evals = {"denoising": c.evals.denoising}
  return c


def _assert_trees_equal(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_the_scorer_reads_the_autoencoders_reconstructions(first_stage, classifier):
  workdir, summary, c = first_stage
  data = pipeline.load_split(c.data, "test").load(np.arange(40))
  params = checkpoint.load_workdir(workdir, "latest").variables["params"]
  model = models.get_model(c.model)
  recon = np.asarray(model.apply({"params": params}, jnp.asarray(data["input"])))
  crops, owner, slot = compositions.slot_crops(np.clip((recon[..., 0] + 1) / 2, 0, 1),
                                               data["layout"])
  _, probs = fid_lib.Classifier(classifier).score(crops)
  want = compositions.accuracies(probs.argmax(1), owner, slot, data["digits"], data["layout"])
  for k, v in want.items():
    assert summary[f"recon_seen_{k}"] == pytest.approx(v, abs=1e-9), k


def test_latent_diffusion_keeps_its_first_stage_and_samples_without_it(
    first_stage, data_dir, tfds_dir, tmp_path):
  ae_dir = str(tmp_path / "ae")
  shutil.copytree(first_stage[0], ae_dir)
  workdir = str(tmp_path / "t2i")
  train.run(_t2i(ae_dir, data_dir, tfds_dir), workdir)
  ae_params = checkpoint.load_workdir(ae_dir, "latest").variables["params"]
  _, state = helpers.final_state(workdir)
  # Loaded at the start, then neither trained nor averaged: the same bits, EMA included.
  _assert_trees_equal(state["params"]["first_stage"], ae_params)
  _assert_trees_equal(state["model_state"]["ema"]["first_stage"], ae_params)
  assert os.path.exists(os.path.join(workdir, "samples", "denoising_step_000004.png"))

  shutil.rmtree(ae_dir)  # the run's workdir holds everything sampling needs
  trained = checkpoint.load_workdir(workdir, "latest")
  task = diffusion.make(trained.config)
  assert "bits_per_dim" not in task.eval_fns  # no pixel likelihood for a latent model
  data = pipeline.load_split(trained.config.data, "test").load(np.arange(3))
  images = task.eval_fns["sample"](trained.variables, jax.random.PRNGKey(0), 3,
                                   jnp.asarray(data["caption"]))
  assert images.shape == (3, 56, 56, 1)
  assert float(jnp.min(images)) >= -1.0 and float(jnp.max(images)) <= 1.0
  # At the lowest noise the denoiser's estimate is the code itself, so the strip's decoded
  # estimate is the autoencoder's reconstruction of the image.
  first = models.get_model(trained.config.diffusion.autoencoder.model)
  x = jnp.asarray(data["input"])
  _, x0_hat = task.eval_fns["denoise"](trained.variables, x, jnp.asarray(data["caption"]), 0.0,
                                       jax.random.PRNGKey(1))
  recon = jnp.clip(first.apply({"params": ae_params}, x), -1.0, 1.0)
  assert x0_hat.shape == x.shape
  np.testing.assert_allclose(x0_hat, recon, atol=0.05)
  assert float(jnp.abs(recon - x).mean()) > 0.02  # the decoder's, not the input passed through


def test_first_stage_errors(first_stage, data_dir, tfds_dir, tmp_path):
  c = _t2i("", data_dir, tfds_dir)
  with pytest.raises(ConfigError, match="starts from a trained first stage"):
    train.run(c, str(tmp_path / "a"))
  assert not os.listdir(tmp_path / "a" / "checkpoints")  # raised before any step
  c = _t2i(first_stage[0], data_dir, tfds_dir)
  c.model.channels = 3
  with pytest.raises(ConfigError, match="set model.image_size=14 and model.channels=2"):
    diffusion.make(c)
  c = _t2i(first_stage[0], data_dir, tfds_dir)
  c.diffusion.autoencoder.model.kind = "conv"
  with pytest.raises(ConfigError, match="of kind 'spatial'"):
    diffusion.make(c)
  c.diffusion.autoencoder.model = c.model  # a denoiser is no first stage
  with pytest.raises(ConfigError, match="name='unet', kind=None"):
    diffusion.make(c)
  c = _t2i(first_stage[0], data_dir, tfds_dir)
  c.diffusion.autoencoder.model.update(image_shape=(28, 28, 1), hidden=(8,))  # 14x14x2 codes
  task = diffusion.make(c)
  with pytest.raises(ConfigError, match=r"first stage encodes \(28, 28, 1\)"):
    task.init(jax.random.PRNGKey(0), {"input": jnp.zeros((2, 56, 56, 1)),
                                      "caption": jnp.zeros((2, 64), jnp.int32)})
  with pytest.raises(ValueError, match="combine quick, clip, latent"):
    t2i_mnist.get_config("latent_small")


def test_a_config_saved_before_latent_diffusion_still_builds():
  c = ml_collections.ConfigDict(flow_mnist.get_config("quick").to_dict())
  del c.diffusion["autoencoder"]  # what a workdir's config.json from before holds
  assert "bits_per_dim" in diffusion.make(c).eval_fns
  task, spec = diffusion.make_without_data(c)
  assert spec["input"].shape[1:] == (28, 28, 1) and task.pretrained is None and not task.fixed
