"""Video: Moving MNIST generated from the carve (dynamics, held-out digits, determinism), the
frame metrics against scikit-image, and the video augmentation ops."""

import hashlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from aigc_jax import config as config_lib, video
from aigc_jax.data import pipeline, video as video_data
from aigc_jax.errors import ConfigError
from aigc_jax.options import augment


def _bounce(start: float, velocity: float, steps: int) -> list[float]:
  """An independent reference: move, and on crossing a wall mirror the overshoot back."""
  x, v, out = start, velocity, [start]
  for _ in range(steps - 1):
    x += v
    while not 0.0 <= x <= 1.0:
      if x > 1.0:
        x, v = 2.0 - x, -v
      if x < 0.0:
        x, v = -x, -v
    out.append(x)
  return out


def test_trajectories_reflect_exactly_at_the_borders():
  pos = video_data.trajectories(np.random.default_rng(3), 40, 30, speed=(0.05, 0.45))
  assert pos.min() >= 0.0 and pos.max() <= 1.0
  # Regenerate the draws to know each digit's start and velocity, then bounce step by step.
  r = np.random.default_rng(3)
  start = r.uniform(size=(40, 2))
  theta = r.uniform(0, 2 * np.pi, 40)
  speed = r.uniform(0.05, 0.45, 40)
  velocity = speed[:, None] * np.stack([np.sin(theta), np.cos(theta)], -1)
  for d in range(40):
    for axis in range(2):
      np.testing.assert_allclose(pos[d, :, axis],
                                 _bounce(start[d, axis], velocity[d, axis], 30), atol=1e-9)
  # Speed is constant in magnitude between bounces: most steps move by exactly the speed.
  steps = np.linalg.norm(np.diff(pos, axis=1), axis=-1)
  assert np.mean(np.isclose(steps, speed[:, None])) > 0.6


def test_render_places_each_digit_inside_the_frame_combined_by_max():
  digits = np.zeros((2, 28, 28), np.uint8)
  digits[0, 0, 0], digits[0, 27, 27] = 200, 100  # corners mark where a digit lands
  digits[1, :, :] = 50
  positions = np.array([[[0.0, 0.0], [1.0, 1.0], [0.5, 0.25]],
                        [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])
  frames = video_data.render(digits, positions, 64)
  assert frames.shape == (3, 64, 64, 1) and frames.dtype == np.uint8
  f = frames[..., 0]
  assert f[0, 0, 0] == 200 and f[0, 27, 27] == 100  # max(200, 50), max(100, 50)
  assert f[1, 36, 36] == 200 and f[1, 63, 63] == 100  # the far corner: 64 - 28 = 36
  assert f[2, 18, 9] == 200  # rint(0.5 * 36), rint(0.25 * 36)
  assert f[0, 28:, 28:].max() == 0 and f[1, 0, 0] == 50


def test_generated_splits_are_pure_functions_of_the_index_and_hold_out_digits(data_dir,
                                                                             tfds_dir):
  c = config_lib.get_config()
  c.data.update(name="mnist_idx", data_dir=data_dir, tfds_dir=tfds_dir)
  c.data.video.update(frames=8, eval_sequences=50)
  train, test = (pipeline.load_split(c.data, s) for s in ("train", "test"))
  assert len(train) == sys.maxsize and train.endless and len(test) == 50
  a, b = train.load([5, 6]), train.load([6])
  np.testing.assert_array_equal(a["frames"][1], b["frames"][0])  # a function of the index
  assert a["frames"].shape == (2, 8, 64, 64, 1) and a["frames"].dtype == np.uint8
  # The test split's digits are the carve's test images, the training split's its own.
  assert len(test.digits) == 2000 and len(train.digits) == 7000
  ex = test.sequence(3)
  first = ex["frames"][0, ..., 0]
  for d in ex["digit_index"]:  # each recorded test digit is drawn whole somewhere in frame 0
    digit = test.digits[d]
    assert any(np.all(first[y:y + 28, x:x + 28] >= digit)
               for y in range(37) for x in range(37))
  assert first.max() <= max(test.digits[d].max() for d in ex["digit_index"])
  # A slice starts at its first sequence index; test and validation never share a sequence.
  sliced = pipeline.load_split(c.data, "test[10:20]")
  np.testing.assert_array_equal(sliced.load([0])["frames"], test.load([10])["frames"])
  val = pipeline.load_split(c.data, "validation")
  assert not np.array_equal(val.load([0])["frames"], test.load([0])["frames"])
  # Frozen: the first test sequence's frames hash to the value recorded when GENERATOR_VERSION
  # 1 was made, so a change to the generator that forgets to bump it fails here.
  c.data.video.update(frames=20, eval_sequences=10_000)
  first = pipeline.load_split(c.data, "test").load([0])["frames"].tobytes()
  assert hashlib.sha256(first).hexdigest()[:16] == FIRST_TEST_SEQUENCE_SHA256


# Moving MNIST v1 from the carve's 2,000 test digits (the MNIST test file alone, as shared/data).
FIRST_TEST_SEQUENCE_SHA256 = "7673ee2b4d492669"


def test_endless_split_batches_resume_by_step():
  indices = pipeline.GlobalBatchIndices(sys.maxsize, 8, seed=0, process_index=1,
                                        process_count=2, shuffle=False)
  np.testing.assert_array_equal(indices[0], [4, 5, 6, 7])
  np.testing.assert_array_equal(indices[10**12], 8 * 10**12 + np.arange(4, 8))


def test_bad_video_configs_are_clear_errors(data_dir, tfds_dir):
  c = config_lib.get_config()
  c.data.update(name="mnist_idx", data_dir=data_dir, tfds_dir=tfds_dir)
  c.data.video.update(frames=20, frame_size=20)
  with pytest.raises(ConfigError, match="smaller than a digit"):
    pipeline.validate(c.data)
  c.data.video.update(frame_size=64, speed=(0.3, 0.1))
  with pytest.raises(ConfigError, match="low <= high"):
    pipeline.validate(c.data)
  c.data.video.update(speed=(0.1, 0.1))
  with pytest.raises(ConfigError, match="test\\[:1000\\]"):
    pipeline.load_split(c.data, "test[::2]")
  with pytest.raises(ConfigError, match="unknown augmentation op|Unknown augmentation op"):
    augment.parse("flip_video|spin_video(3)")


@pytest.mark.parametrize("shape", [(2, 64, 64, 1), (3, 20, 31, 2)])
def test_ssim_and_psnr_equal_scikit_image(shape):
  rng = np.random.default_rng(1)
  true = rng.uniform(size=shape).astype(np.float32)
  true[0, : shape[1] // 2] = 0.0  # flat regions, where SSIM's constants matter
  pred = np.clip(true + rng.normal(0, 0.15, shape), 0, 1).astype(np.float32)
  ours = np.asarray(video.ssim(jnp.asarray(pred), jnp.asarray(true)))
  ref = [structural_similarity(true[i], pred[i], data_range=1.0, channel_axis=-1)
         for i in range(shape[0])]
  np.testing.assert_allclose(ours, ref, atol=1e-5)
  np.testing.assert_allclose(np.asarray(video.psnr(pred, true)),
                             [peak_signal_noise_ratio(true[i], pred[i], data_range=1.0)
                              for i in range(shape[0])], rtol=1e-5)
  assert float(video.ssim(true, true)[0]) == pytest.approx(1.0)
  assert float(video.psnr(true, true)[0]) == video.PSNR_MAX_DB


def test_frame_mse_and_mae_sum_over_the_frame():
  true = np.zeros((1, 2, 8, 8, 1), np.float32)
  pred = true.copy()
  pred[0, 0, :3, 0, 0] = 0.5  # frame 0: three pixels off by 0.5
  np.testing.assert_allclose(np.asarray(video.frame_mse(pred, true)), [[0.75, 0.0]])
  np.testing.assert_allclose(np.asarray(video.frame_mae(pred, true)), [[1.5, 0.0]])


def test_video_ops_act_on_every_frame_alike():
  x = jnp.asarray(np.random.default_rng(0).uniform(size=(4, 6, 8, 8, 1)), jnp.float32)
  out = augment.parse("flip_video(1.0, key='frames')")(jax.random.PRNGKey(0), {"frames": x})
  np.testing.assert_array_equal(out["frames"], x[:, :, :, ::-1])
  ud = augment.parse("flip_video(1.0, axis='ud', key='frames')")(jax.random.PRNGKey(0),
                                                                 {"frames": x})
  np.testing.assert_array_equal(ud["frames"], x[:, :, ::-1])
  # p = 0.5: each example flipped whole or not at all, never some of its frames.
  half = augment.parse("flip_video(0.5, key='frames')")(jax.random.PRNGKey(3), {"frames": x})
  flipped = [bool(np.array_equal(half["frames"][i], x[i, :, :, ::-1])) for i in range(4)]
  assert all(f or np.array_equal(half["frames"][i], x[i]) for i, f in enumerate(flipped))
  crop = augment.parse("time_crop(3, key='frames')")(jax.random.PRNGKey(1), {"frames": x})
  for i in range(4):
    starts = [s for s in range(4) if np.array_equal(crop["frames"][i], x[i, s:s + 3])]
    assert len(starts) == 1  # three consecutive frames of the same video
  rev = augment.parse("reverse_time(1.0, key='frames')")(jax.random.PRNGKey(1), {"frames": x})
  np.testing.assert_array_equal(rev["frames"], x[:, ::-1])
  stack = augment.parse("stack_frames(key='frames')")
  stacked = stack(jax.random.PRNGKey(0), {"frames": x})["frames"]
  assert stacked.shape == (4, 8, 8, 6)
  np.testing.assert_array_equal(stacked[:, :, :, 2], x[:, 2, :, :, 0])
  with pytest.raises(ConfigError, match="\\[T, H, W, C\\] videos"):
    augment.parse("flip_video")(jax.random.PRNGKey(0), {"input": x[:, 0]})
