"""FID, Inception Score, class histograms and image grids against closed forms and scipy."""

import numpy as np
import pytest
import scipy.linalg

from aigc_jax.errors import ConfigError
from aigc_jax.evaluators import fid, grid


def _spd(rng, d):
  a = rng.normal(size=(d, d))
  return a @ a.T + 0.1 * np.eye(d)


def test_frechet_distance_closed_form_and_scipy_reference():
  d = 6
  eye = np.eye(d)
  assert fid.frechet_distance(np.zeros(d), eye, np.zeros(d), eye) == pytest.approx(0.0, abs=1e-9)
  # N(0, I) vs N(m, s^2 I): |m|^2 + d (1 - s)^2.
  m, s = np.full(d, 0.5), 3.0
  assert fid.frechet_distance(np.zeros(d), eye, m, s * s * eye) == pytest.approx(
      d * 0.25 + d * (1 - s) ** 2)
  rng = np.random.default_rng(0)
  s1, s2 = _spd(rng, d), _spd(rng, d)
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  ref = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * np.real(scipy.linalg.sqrtm(s1 @ s2)))
  assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-6)


def test_fid_of_samples_shrinks_with_the_gap():
  rng = np.random.default_rng(1)
  a = rng.normal(size=(4000, 8))
  near = fid.fid(a, rng.normal(size=(4000, 8)))
  far = fid.fid(a, rng.normal(loc=1.0, size=(4000, 8)))
  assert near < 0.05 and far == pytest.approx(8.0, rel=0.05)


def test_inception_score_and_histogram():
  k = 10
  confident = np.eye(k)[np.arange(1000) % k]
  assert fid.inception_score(confident) == pytest.approx(k, rel=1e-6)
  collapsed = np.eye(k)[np.zeros(1000, int)]
  assert fid.inception_score(collapsed) == pytest.approx(1.0, rel=1e-6)
  unsure = np.full((1000, k), 1.0 / k)
  assert fid.inception_score(unsure) == pytest.approx(1.0, rel=1e-6)
  # Half the samples sure of class 0, half of class 1: exp(log 2) = 2.
  assert fid.inception_score(np.eye(k)[np.arange(1000) % 2]) == pytest.approx(2.0, rel=1e-6)
  np.testing.assert_allclose(fid.class_histogram(np.eye(k)[[0, 0, 3, 9]]),
                             [0.5, 0, 0, 0.25, 0, 0, 0, 0, 0, 0.25])


def test_grid_tiles_images_in_rows():
  images = np.stack([np.full((4, 4, 1), v) for v in np.linspace(-1, 1, 6)])
  g = grid.tile(images, ncol=4, pad=1)
  assert g.shape == (2 * 5 + 1, 4 * 5 + 1) and g.dtype == np.uint8
  assert g[1, 1] == 0 and g[1 + 5, 1 + 5] == 255  # image 0 (-1) and image 5 (+1)
  assert g[6, 16] == 0  # the empty slot after six images is black
  rgb = grid.tile(np.zeros((3, 4, 4, 3)), ncol=3)
  assert rgb.shape[-1] == 3


def test_missing_or_wrong_classifier_workdirs_are_clear_errors(tmp_path):
  with pytest.raises(ConfigError, match="no config.json"):
    fid.Classifier(str(tmp_path))
  (tmp_path / "config.json").write_text(
      '{"model": {"name": "cnn"}, "data": {"preprocess": "value_range(-1, 1)"}}')
  with pytest.raises(ConfigError, match="value_range\\(0, 1\\)"):
    fid.Classifier(str(tmp_path))
