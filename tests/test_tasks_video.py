"""The video task through the one trainer: metrics against an independent computation, 1 vs 8
devices, exact resume, bfloat16, strips and curves written, clear errors; the catalog's
moving_mnist through the same path; ConvLSTM reading its own predictions."""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds
from skimage.metrics import structural_similarity

from aigc_jax import config as config_lib, models, train
from aigc_jax.data import pipeline
from aigc_jax.errors import ConfigError
from aigc_jax.tasks import get_task
from experiments import video_mnist
from tests import helpers


def _tiny(data_dir, tfds_dir, variant="quick", **train_kw):
  c = video_mnist.get_config(variant)
  c.data.update(data_dir=data_dir, tfds_dir=tfds_dir, batch_size=8, eval_batch_size=16)
  c.data.video.update(frames=6, frame_size=32)
  c.video.update(given=3, predict=3)
  if c.model.name == "simvp":
    c.model.update(channels=4, hidden=8, blocks=1)
  elif c.model.name == "convlstm":
    c.model.update(hidden=(4,), kernel_size=3)
  c.cpu_devices = 0
  c.optim.update(lr=3e-3, warmup_steps=2)
  c.train.update(dict(num_steps=6, log_every_steps=2, eval_every_steps=6,
                      checkpoint_every_steps=2, progress_bar=False), **train_kw)
  c.evals.validation.split = "validation[:16]"
  c.evals.test.update(split="test[:32]", num=2)
  return c


def test_metrics_equal_an_independent_computation_and_outputs_are_written(data_dir, tfds_dir,
                                                                          tmp_path):
  c = _tiny(data_dir, tfds_dir)
  s = train.run(c, str(tmp_path))
  _, params = helpers.final_params(str(tmp_path))
  frames = pipeline.load_split(c.data, "test[:32]").load(np.arange(32))["frames"]
  given, future = frames[:, :3], frames[:, 3:6]
  pred = np.clip(np.asarray(models.get_model(c.model).apply({"params": params}, given, 3)), 0, 1)
  copy = np.repeat(given[:, -1:], 3, axis=1)
  for prefix, p in (("test_", pred), ("test_copy_last_", copy)):
    per_frame = ((p - future) ** 2).sum(axis=(2, 3, 4))  # [32, 3]
    assert s[prefix + "mse"] == pytest.approx(per_frame.mean(), rel=1e-4)
    assert s[prefix + "mse_frame6"] == pytest.approx(per_frame[:, 2].mean(), rel=1e-4)
    assert s[prefix + "mae"] == pytest.approx(np.abs(p - future).sum(axis=(2, 3, 4)).mean(),
                                              rel=1e-4)
    ssim = [structural_similarity(future[i, t], p[i, t], data_range=1.0, channel_axis=-1)
            for i in range(32) for t in range(3)]
    assert s[prefix + "ssim"] == pytest.approx(np.mean(ssim), abs=1e-5)
  mean = np.repeat(given.mean(axis=1, keepdims=True), 3, axis=1)
  assert s["test_mean_frame_mse"] == pytest.approx(((mean - future) ** 2).sum((2, 3, 4)).mean(),
                                                   rel=1e-4)
  assert os.path.exists(tmp_path / "curves" / "test_horizon.png")
  assert os.listdir(tmp_path / "samples") == ["test_step_000006.png"]
  assert not any("_frame" in p for p in os.listdir(tmp_path / "plots"))


def test_one_device_equals_eight_and_bfloat16_agrees(data_dir, tfds_dir, tmp_path):
  c = _tiny(data_dir, tfds_dir, "convlstm_quick")
  eight = helpers.one_and_eight_devices(c, tmp_path, "test_mse")
  _, params = helpers.final_params(eight)
  batch = pipeline.load_split(c.data, "test[:32]").load(np.arange(32))
  batch["mask"] = np.ones(32, bool)
  helpers.bfloat16_agrees(c, params, batch, "mse", rel=2e-2)


def test_killed_run_resumes_exactly(data_dir, tfds_dir, tmp_path, monkeypatch):
  c = _tiny(data_dir, tfds_dir)
  del c.evals["validation"]
  c.evals.test.num = 0
  c.train.best_metric = ""
  s1, s2 = helpers.crash_and_resume(c, tmp_path, monkeypatch, after_batches=3)
  assert s1["test_mse"] == s2["test_mse"]


def test_bad_video_task_configs_are_errors_before_compiling(data_dir, tfds_dir, tmp_path):
  c = _tiny(data_dir, tfds_dir)
  c.video.predict = 4  # 3 + 4 > 6 frames
  with pytest.raises(ConfigError, match="fewer than video.given \\+ video.predict"):
    train.run(c, str(tmp_path / "short"))
  c = _tiny(data_dir, tfds_dir)
  c.data.preprocess = "keep('frames')"  # uint8 frames
  with pytest.raises(ConfigError, match="value_range\\(0, 1, key='frames'\\)"):
    train.run(c, str(tmp_path / "uint8"))
  c = _tiny(data_dir, tfds_dir)
  c.train.update(num_steps=0, num_epochs=1.0)
  with pytest.raises(ConfigError, match="endless"):
    train.run(c, str(tmp_path / "epochs"))


def test_catalog_moving_mnist_reads_through_the_same_path(data_dir, tfds_dir):
  c = _tiny(data_dir, tfds_dir)
  c.data.video.frames = 0  # the catalog's own sequences, read as records
  c.data.update(name="moving_mnist",
                preprocess="rename(image_sequence='frames')|value_range(0, 1, key='frames')")
  c.video.update(given=10, predict=10)
  c.model.update(channels=4, hidden=8, blocks=1)
  with tfds.testing.mock_data(num_examples=3):
    split = pipeline.load_split(c.data, "test")
    batch = dict(split.load(np.arange(3)), mask=np.ones(3, bool))
  assert batch["frames"].shape == (3, 20, 64, 64, 1)
  task = get_task(c)
  variables = task.init(jax.random.PRNGKey(0), pipeline.batch_spec(split, 3))
  m = task.eval_fns["metrics"](variables, batch, None)
  copy = np.repeat(batch["frames"][:, 9:10], 10, axis=1)
  assert float(m["copy_last_mse"]) / 3 == pytest.approx(
      ((copy - batch["frames"][:, 10:]) ** 2).sum((2, 3, 4)).mean(), rel=1e-4)


def test_convlstm_reads_its_own_predictions_after_the_given_frames():
  c = config_lib.get_config(task="video")
  c.model = ml_collections.ConfigDict(video_mnist.model("convlstm"))
  c.model.update(hidden=(6, 5), kernel_size=3)
  model = models.get_model(c.model)
  given = jax.random.uniform(jax.random.PRNGKey(0), (2, 4, 16, 16, 1))
  variables = model.init(jax.random.PRNGKey(1), given, 3)
  three = model.apply(variables, given, 3)
  one = model.apply(variables, given, 1)
  np.testing.assert_allclose(three[:, :1], one, atol=1e-6)
  # Frame 6 follows from the real frames and the model's own frame 5, as a fresh call shows.
  fed = model.apply(variables, jnp.concatenate([given, one], 1), 1)
  np.testing.assert_allclose(three[:, 1:2], fed, atol=1e-5)


def _tiny_diffusion(data_dir, tfds_dir):
  c = _tiny(data_dir, tfds_dir, "diffusion_quick")
  c.model.update(image_size=32, channels=3, cond_channels=3, width=8, multipliers=(1, 2),
                 attention_at=(), heads=2, groups=4)
  c.video.samples = 5
  c.sampler.steps = 3
  c.evals.test.update(split="test[:16]", futures=2)
  return c


def test_diffusion_draws_are_scored_as_an_independent_computation_says(data_dir, tfds_dir):
  c = _tiny_diffusion(data_dir, tfds_dir)
  task = get_task(c)
  split = pipeline.load_split(c.data, "test[:4]")
  batch = dict(split.load(np.arange(4)), mask=np.array([1, 1, 1, 0], bool))
  variables = task.init(jax.random.PRNGKey(0), pipeline.batch_spec(split, 4))
  # An untrained U-Net outputs 0 (zero-initialised); random outputs make the draws depend on it.
  variables = jax.tree.map(lambda x: x + 0.05 * jax.random.normal(jax.random.PRNGKey(1),
                                                                  x.shape), variables)
  rng = jax.random.PRNGKey(2)
  m = task.eval_fns["metrics"](variables, batch, rng)
  given, future = batch["frames"][:, :3], batch["frames"][:, 3:6]
  draws = np.clip(np.asarray(task.eval_fns["predict_frames"](
      variables, jnp.asarray(np.repeat(given, 5, axis=0)), 3, rng)), 0, 1).reshape(
          (4, 5, 3, 32, 32, 1))
  per_draw = ((draws - future[:, None]) ** 2).sum(axis=(3, 4, 5)).mean(axis=2)[:3]  # [3, 5]
  assert not np.allclose(draws[:, 0], draws[:, 1])  # one past, different futures
  assert float(m["mse"]) == pytest.approx(per_draw.mean() * 3, rel=1e-4)
  assert float(m["best_of_1_mse"]) == pytest.approx(per_draw[:, 0].sum(), rel=1e-4)
  assert float(m["best_of_5_mse"]) == pytest.approx(per_draw.min(axis=1).sum(), rel=1e-4)
  assert "best_of_10_mse" not in m  # only 5 draws
  mean = draws.mean(axis=1)[:3]
  spread = ((draws[:3] - mean[:, None]) ** 2).sum(axis=(3, 4, 5)).mean(axis=(1, 2))
  assert float(m["spread_mse"]) == pytest.approx(spread.sum(), rel=1e-4)
  ensemble = ((mean - future[:3]) ** 2).sum(axis=(2, 3, 4)).mean(axis=1)
  assert float(m["ensemble_mse"]) == pytest.approx(ensemble.sum(), rel=1e-4)
  # The draws follow the given frames: another past changes them under the same noise.
  other = task.eval_fns["predict_frames"](variables, jnp.asarray(given[::-1]), 3, rng)
  same = task.eval_fns["predict_frames"](variables, jnp.asarray(given), 3, rng)
  assert np.abs(np.asarray(other)[::-1] - np.asarray(same)).max() > 1e-3


def test_diffusion_objective_trains_and_writes_several_futures(data_dir, tfds_dir, tmp_path):
  c = _tiny_diffusion(data_dir, tfds_dir)
  s = train.run(c, str(tmp_path))
  assert {"validation_loss", "test_best_of_1_mse", "test_best_of_5_mse", "test_spread_mse",
          "test_copy_last_mse"} <= set(s)
  assert s["test_best_of_5_mse"] < s["test_best_of_1_mse"]
  assert s["test_spread_mse"] > 0
  from PIL import Image  # pylint: disable=import-outside-toplevel
  strip = np.asarray(Image.open(tmp_path / "samples" / "test_step_000006.png"))
  # 2 clips x (given, true, 2 futures) rows of 32 + 2 pixels, 3 frames a row.
  assert strip.shape == (2 * 4 * 34 + 2, 3 * 34 + 2)
  _, raw = helpers.final_state(str(tmp_path))
  assert "ema" in raw["model_state"]  # draws come from the averaged weights


def test_bad_diffusion_video_configs_are_errors(data_dir, tfds_dir):
  c = _tiny_diffusion(data_dir, tfds_dir)
  c.model.cond_channels = 0
  with pytest.raises(ConfigError, match="model.cond_channels = video.given"):
    get_task(c)
  c = _tiny_diffusion(data_dir, tfds_dir)
  c.model.name = "simvp"
  with pytest.raises(ConfigError, match="needs model.name in \\('unet',\\)"):
    get_task(c)
  c = _tiny_diffusion(data_dir, tfds_dir)
  c.model.channels = 4  # 3 frames to predict of 1 channel
  task = get_task(c)
  split = pipeline.load_split(c.data, "test[:2]")
  with pytest.raises(ConfigError, match="model.channels=3"):
    task.init(jax.random.PRNGKey(0), pipeline.batch_spec(split, 2))
