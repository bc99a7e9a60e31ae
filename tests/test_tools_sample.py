"""`python -m aigc_jax.sample` on image runs: a grid of the task's own samples from the saved
checkpoint (text runs: tests/test_models_gpt.py); a run whose task cannot sample says so."""

import jax
import numpy as np
import pytest
from PIL import Image

from aigc_jax import checkpoint, tasks, train
from aigc_jax.errors import ConfigError
from aigc_jax.evaluators import grid
from aigc_jax.tools import sample
from experiments import cnn_mnist, vae_mnist


@pytest.fixture(scope="module")
def vae_run(data_dir, tfds_dir, tmp_path_factory):
  c = vae_mnist.get_config("quick")
  c.model.update(hidden=(64,), latent_dim=4)
  c.data.update(data_dir=data_dir, tfds_dir=tfds_dir, batch_size=64)
  # The grid shows [0, 1]; validation reports the best metric.
  c.evals = {"validation": c.evals.validation, "test": c.evals.test, "samples": c.evals.samples}
  c.train.update(num_epochs=0.0, num_steps=10, log_every_steps=5, eval_every_steps=10,
                 checkpoint_every_steps=10, progress_bar=False)
  wd = str(tmp_path_factory.mktemp("vae"))
  train.run(c, wd)
  return wd


def test_image_grid_is_the_tasks_samples_from_the_checkpoint(vae_run, tmp_path):
  path = sample.sample_grid(vae_run, 12, seed=3, out=str(tmp_path / "g.png"))
  got = np.asarray(Image.open(path))
  # The same draw by hand: the task's sample function, the checkpoint, key 3, a 4-wide grid of
  # pixel probabilities in [0, 1] (the range the run's own sample grid shows).
  trained = checkpoint.load_workdir(vae_run)
  images = tasks.get_task(trained.config).eval_fns["sample"](trained.variables,
                                                            jax.random.PRNGKey(3), 12, None)
  np.testing.assert_array_equal(got, grid.tile(np.asarray(images), 4, (0.0, 1.0)))
  assert got.shape[:2] == (3 * 30 + 2, 4 * 30 + 2)  # 3 rows of 4 digits, 2-pixel borders


def test_a_run_that_cannot_sample_says_so(data_dir, tfds_dir, tmp_path):
  c = cnn_mnist.get_config("quick")
  c.data.update(data_dir=data_dir, tfds_dir=tfds_dir)
  c.train.update(num_epochs=0.0, num_steps=2, log_every_steps=1, eval_every_steps=2,
                 checkpoint_every_steps=2, progress_bar=False)
  train.run(c, str(tmp_path))
  with pytest.raises(ConfigError, match="cannot sample"):
    sample.sample_grid(str(tmp_path), 4, 0)


def test_diffusion_grid_takes_sampler_guidance_and_labels(data_dir, tfds_dir, tmp_path):
  from tests.test_tasks_diffusion import _tiny  # pylint: disable=import-outside-toplevel
  c = _tiny(tfds_dir, data_dir, variant="cond_quick", num_steps=2, eval_every_steps=2,
            checkpoint_every_steps=2)
  c.evals = {"test": c.evals.test}
  wd = str(tmp_path / "run")
  train.run(c, wd)
  chosen = {"name": "heun", "steps": 3, "guidance": 3.0}
  path = sample.sample_grid(wd, 0, seed=1, out=str(tmp_path / "g.png"), sampler=chosen,
                            labels=[7, 0, 7])
  trained = checkpoint.load_workdir(wd)
  trained.config.sampler.update(chosen)
  fn = tasks.get_task(trained.config).eval_fns["sample"]
  images = fn(trained.variables, jax.random.PRNGKey(1), 3, np.array([7, 0, 7]))
  np.testing.assert_array_equal(np.asarray(Image.open(path)),
                                grid.tile(np.asarray(images), 3, (-1.0, 1.0)))
  with pytest.raises(ConfigError, match="at least 1 step"):
    sample.sample_grid(wd, 4, 0, sampler={"steps": 0})
  with pytest.raises(ConfigError, match="classes must be in 0..9"):
    sample.sample_grid(wd, 4, 0, labels=[10])


def test_sampler_options_need_a_diffusion_run(vae_run):
  with pytest.raises(ConfigError, match="no sampler options \\(--steps\\)"):
    sample.sample_grid(vae_run, 4, 0, sampler={"steps": 20})
