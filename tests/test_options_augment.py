import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aigc_jax.options import augment
from aigc_jax.errors import ConfigError

RNG = jax.random.PRNGKey(0)


def _images(shape, seed=0):
  return np.random.default_rng(seed).uniform(size=shape).astype(np.float32)


def _apply(spec, batch, rng=RNG):
  return jax.jit(augment.parse(spec))(rng, batch)


@pytest.mark.parametrize("spec,match", [
    ("random_crop(4)|blur(3)", r"Unknown augmentation op 'blur'.*valid ops: .*random_crop.*views"),
    ("gaussian_noise(bogus=1)", "Bad arguments"),
    ("gaussian_noise(-0.1)", r"gaussian_noise\(std=-0.1\).*\[0, inf\]"),
    ("gaussian_noise(0.1, clip=(1, 0))", "low <= high"),
    ("random_mask(1.5)", r"rate.*\[0, 1\]"),
    ("random_mask(0.5, patch=0)", "patch must be an integer >= 1"),
    ("views(0)", "n must be an integer >= 1"),
    ("rotate(-5)", "degrees"),
    ("flip_lr(p=2)", r"p must be a number in \[0, 1\]"),
    ("random_crop(1.5)", "pad must be an integer"),
    ("random_resized_crop(scale=(0, 1))", "scale"),
    ("clip(1, 0)", "hi"),
    ("flip_lr(key=3)", "key must be a string"),
])
def test_bad_specs_fail_at_parse_time(spec, match):
  with pytest.raises(ConfigError, match=match):
    augment.parse(spec)


def test_empty_spec_is_identity_and_falsy():
  aug = augment.parse(" ")
  assert not aug and aug.spec == " "
  batch = {"input": np.ones((2, 3, 3), np.float32)}
  assert aug(None, batch)["input"] is batch["input"]  # no rng needed
  assert augment.parse("views(2)")


def test_missing_key_and_bad_shapes_name_the_op():
  with pytest.raises(ConfigError, match=r"needs batch key 'image'.*\['input'\]"):
    augment.parse("flip_lr(key='image')")(RNG, {"input": np.zeros((2, 4, 4))})
  with pytest.raises(ConfigError, match="divisible by 3"):
    _apply("random_mask(0.5, patch=3)", {"input": np.zeros((2, 4, 4), np.float32)})
  with pytest.raises(ConfigError, match=r"\[H, W\] or \[H, W, C\]"):
    _apply("rotate(5)", {"input": np.zeros((2, 4), np.float32)})


def test_determinism_and_independent_draws():
  batch = {"input": np.zeros((4, 5, 5, 2), np.float32), "label": np.arange(4)}
  a = _apply("gaussian_noise(1.0)", batch)
  b = _apply("gaussian_noise(1.0)", batch)
  c = _apply("gaussian_noise(1.0)", batch, jax.random.PRNGKey(1))
  np.testing.assert_array_equal(a["input"], b["input"])
  assert not np.allclose(a["input"], c["input"])
  x = np.asarray(a["input"])
  assert all(not np.allclose(x[0], x[i]) for i in range(1, 4))  # each example its own draw
  assert a["input"].dtype == jnp.float32
  np.testing.assert_array_equal(a["label"], batch["label"])


def test_ops_in_a_chain_use_different_keys():
  out = _apply("gaussian_noise(1.0, out='a')|gaussian_noise(1.0, out='b')",
               {"input": np.zeros((2, 4, 4), np.float32)})
  assert not np.allclose(out["a"], out["b"])


def _shift(x, dy, dx):
  """out[i, j] = x[i + dy, j + dx], zero outside."""
  h, w = x.shape[:2]
  out = np.zeros_like(x)
  ys, xs = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
  out[ys, xs] = x[ys.start + dy:ys.stop + dy, xs.start + dx:xs.stop + dx]
  return out


@pytest.mark.parametrize("shape", [(16, 8, 8), (16, 8, 8, 3)])
def test_random_crop_is_a_bounded_shift(shape):
  x = _images(shape) + 0.1  # no zeros in the image, so zero fill shows
  out = np.asarray(_apply("random_crop(2)", {"input": x})["input"])
  shifts = set()
  for xi, oi in zip(x, out):
    found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
             if np.array_equal(oi, _shift(xi, dy, dx))]
    assert len(found) == 1
    shifts.add(found[0])
  assert len(shifts) > 3
  np.testing.assert_array_equal(_apply("random_crop(0)", {"input": x})["input"], x)


@pytest.mark.parametrize("shape", [(3, 9, 9), (3, 9, 9, 2)])
def test_rotate(shape):
  x = _images(shape)
  np.testing.assert_allclose(_apply("rotate(0)", {"input": x})["input"], x, atol=1e-5)
  yy, xx = np.mgrid[:17, :17] - 8.0
  blob = np.exp(-(yy**2 + xx**2 / 4) / 8).astype(np.float32)[None]  # centred, elongated
  out = np.asarray(_apply("rotate(45)", {"input": np.repeat(blob, 4, 0)})["input"])
  np.testing.assert_allclose(out.sum((1, 2)), blob.sum(), rtol=0.02)
  assert not np.allclose(out, blob, atol=1e-2)


def test_flip_lr():
  x = _images((3, 4, 5, 2))
  np.testing.assert_array_equal(_apply("flip_lr(p=1)", {"input": x})["input"], x[:, :, ::-1])
  np.testing.assert_array_equal(_apply("flip_lr(p=0)", {"input": x})["input"], x)


def test_binarize_is_unbiased():
  out = np.asarray(_apply("binarize", {"input": np.full((512, 8, 8), 0.3, np.float32)})["input"])
  assert set(np.unique(out)) <= {0.0, 1.0}
  assert abs(out.mean() - 0.3) < 0.02


def test_random_mask_masks_whole_blocks_at_the_rate():
  x = np.ones((256, 8, 8, 3), np.float32)
  out = np.asarray(_apply("random_mask(0.3, patch=2, value=-1.0)", {"input": x})["input"])
  blocks = out.reshape(256, 4, 2, 4, 2, 3)
  assert np.all(blocks.min((2, 4, 5)) == blocks.max((2, 4, 5)))  # all-or-nothing per block
  assert set(np.unique(out)) == {-1.0, 1.0}
  assert abs((blocks[:, :, 0, :, 0, 0] == -1).mean() - 0.3) < 0.03


def test_views_draw_independently_and_keep_other_keys():
  batch = {"input": _images((4, 6, 6, 1)), "label": np.arange(4)}
  out = _apply("views(2)|gaussian_noise(0.5, out='noisy')|rotate(30)", batch)
  assert out["input"].shape == (4, 2, 6, 6, 1) and out["noisy"].shape == (4, 2, 6, 6, 1)
  v = np.asarray(out["noisy"])
  assert not np.allclose(v[:, 0], v[:, 1])  # the two views got different noise
  assert 0.4 < (v - batch["input"][:, None]).std() < 0.6  # noise on the clean copies
  r = np.asarray(out["input"])
  assert not np.allclose(r[:, 0], r[:, 1])  # ... and different rotations
  np.testing.assert_array_equal(out["label"], batch["label"])


def test_out_keeps_the_clean_input():
  x = _images((2, 5, 5))
  out = _apply("gaussian_noise(0.5, clip=(0, 1), out='corrupted')", {"input": x})
  np.testing.assert_array_equal(out["input"], x)
  assert out["corrupted"].min() >= 0 and out["corrupted"].max() <= 1
  assert not np.allclose(out["corrupted"], x)
  np.testing.assert_array_equal(_apply("clip(0.2, 0.8)", {"input": x})["input"],
                                np.clip(x, 0.2, 0.8))


@pytest.mark.parametrize("shape", [(2, 8, 8), (2, 8, 8, 3)])
def test_random_resized_crop(shape):
  x = _images(shape)
  full = _apply("random_resized_crop(scale=(1, 1), ratio=(1, 1))", {"input": x})["input"]
  np.testing.assert_allclose(full, x, atol=1e-5)
  out = np.asarray(_apply("random_resized_crop(scale=(0.2, 0.5))", {"input": x})["input"])
  assert out.shape == shape and not np.allclose(out, x, atol=1e-2)
  assert out.min() >= x.min() - 1e-6 and out.max() <= x.max() + 1e-6  # bilinear: no overshoot
