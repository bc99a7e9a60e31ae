"""Linear probe and k-NN against scikit-learn on synthetic data and the real digits data set."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from aigc_jax.evaluators import probe_lib


def _blobs(n, num_features, num_classes, spread, seed):
  """Gaussian classes with means of norm ~spread * sqrt(F): larger spread, easier problem."""
  rng = np.random.default_rng(seed)
  means_KF = rng.normal(size=(num_classes, num_features)) * spread
  y_N = rng.integers(0, num_classes, n)
  return (means_KF[y_N] + rng.normal(size=(n, num_features))).astype(np.float32), y_N


@pytest.fixture(scope="module")
def digits():
  """Real 8x8 digits (64 features), a fixed 1,437 / 360 split."""
  x, y = load_digits(return_X_y=True)
  train_x, test_x, train_y, test_y = train_test_split(x, y, test_size=360, random_state=0)
  assert len(train_x) == 1437
  return train_x.astype(np.float32), train_y, test_x.astype(np.float32), test_y


def test_standardize_uses_train_statistics():
  train = np.array([[0.0, 5.0], [2.0, 5.0], [4.0, 5.0]])
  z_train, z_test = probe_lib.standardize(train, np.array([[2.0, 6.0]]))
  assert z_train.dtype == np.float32 and z_test.dtype == np.float32
  np.testing.assert_allclose(z_train.mean(0), 0, atol=1e-6)
  np.testing.assert_allclose(z_train[:, 0].std(), 1, rtol=1e-6)
  # Constant feature: the 1e-6 floor keeps it finite instead of dividing by zero.
  np.testing.assert_allclose(z_train[:, 1], 0)
  np.testing.assert_allclose(z_test, [[0.0, 1e6]], rtol=1e-5)


@pytest.mark.parametrize("l2", [1e-2, 1e-3])
def test_logistic_regression_matches_sklearn(l2):
  x, y = _blobs(800, 16, 4, spread=0.4, seed=0)
  (x_train, x_test) = probe_lib.standardize(x[:600], x[600:])
  y_train, y_test = y[:600], y[600:]
  w_FK, b_K = probe_lib.fit_logistic_regression(x_train, y_train, 4, l2)
  # sklearn minimises sum of losses / N + 0.5 |W|^2 / (C N), the same objective at C = 1/(l2 N).
  sk = LogisticRegression(C=1 / (l2 * len(y_train)), tol=1e-10, max_iter=10_000)
  sk.fit(x_train.astype(np.float64), y_train)
  np.testing.assert_allclose(w_FK, sk.coef_.T, atol=1e-3)
  # The unpenalised intercept is unique only up to a shift: both solvers keep sum(b) at 0.
  np.testing.assert_allclose(b_K, sk.intercept_, atol=1e-3)
  logits = x_test @ w_FK + b_K
  probs = np.exp(logits - logits.max(1, keepdims=True))
  probs /= probs.sum(1, keepdims=True)
  np.testing.assert_allclose(probs, sk.predict_proba(x_test), atol=3e-4)  # float32 vs float64
  ours = np.mean(logits.argmax(1) == y_test)
  assert abs(ours - sk.score(x_test, y_test)) <= 0.01
  assert 0.5 < ours < 1.0  # a non-trivial problem, so the comparison means something


def test_linear_probe_on_digits_matches_sklearn(digits):
  train_x, train_y, test_x, test_y = digits
  result = probe_lib.linear_probe(train_x, train_y, test_x, test_y, 10)
  scaler = StandardScaler().fit(train_x)
  sk = LogisticRegression(max_iter=10_000).fit(scaler.transform(train_x), train_y)
  sk_acc = sk.score(scaler.transform(test_x), test_y)
  assert result["accuracy"] > 0.9
  assert abs(result["accuracy"] - sk_acc) <= 0.015, (result, sk_acc)
  assert result["l2"] in (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
  assert 0.9 < result["val_accuracy"] <= 1.0 and result["train_accuracy"] >= result["accuracy"]


def test_linear_probe_separable_and_random_labels():
  x, y = _blobs(1500, 32, 5, spread=2.0, seed=1)
  result = probe_lib.linear_probe(x[:1000], y[:1000], x[1000:], y[1000:], 5)
  assert result["accuracy"] >= 0.99 and result["train_accuracy"] >= 0.99

  # Labels independent of the features: test accuracy at chance (0.2, std 0.018 for 500 examples)
  # however well the probe memorises the train set.
  random_y = np.random.default_rng(2).integers(0, 5, 1500)
  result = probe_lib.linear_probe(x[:1000], random_y[:1000], x[1000:], random_y[1000:], 5)
  assert abs(result["accuracy"] - 0.2) < 0.07, result
  assert abs(result["val_accuracy"] - 0.2) < 0.15, result


def test_linear_probe_single_l2_skips_selection(digits):
  result = probe_lib.linear_probe(*digits, 10, l2_grid=(1e-3,))
  assert result["l2"] == 1e-3 and result["val_accuracy"] is None
  assert result["accuracy"] > 0.9


def _vote_with_nearest_tiebreak(labels_Nk, num_classes):
  """Reference for the documented rule: most votes; among tied classes, the nearer neighbour."""
  preds = []
  for row in labels_Nk:
    counts = np.bincount(row, minlength=num_classes)
    preds.append(next(c for c in row if counts[c] == counts.max()))
  return np.array(preds)


@pytest.mark.parametrize("k", [1, 2, 5, 20])
def test_knn_matches_sklearn_on_digits(digits, k):
  train_x, train_y, test_x, test_y = digits
  sk = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute").fit(train_x, train_y)
  ours = probe_lib.knn_predict(train_x, train_y, test_x, 10, k=k)
  # Exact agreement with the tie rule applied to sklearn's own neighbours.
  _, idx_Nk = sk.kneighbors(test_x)
  np.testing.assert_array_equal(ours, _vote_with_nearest_tiebreak(train_y[idx_Nk], 10))
  acc = probe_lib.knn_accuracy(train_x, train_y, test_x, test_y, 10, k=k)
  sk_acc = sk.score(test_x, test_y)
  if k != 2:
    # On this split the vote ties at k=5 fall to the same class under both rules.
    assert acc == sk_acc
  else:
    # sklearn gives a 1-1 tie to the smaller label, we to the nearer neighbour: they differ on a
    # handful of tied examples only.
    assert abs(acc - sk_acc) <= 0.01 and acc > 0.95


def test_knn_chunk_size_and_temperature(digits):
  train_x, train_y, test_x, test_y = digits
  preds = [probe_lib.knn_predict(train_x, train_y, test_x, 10, k=20, temperature=0.07, chunk=c)
           for c in (7, 100, 4096)]
  np.testing.assert_array_equal(preds[0], preds[1])
  np.testing.assert_array_equal(preds[0], preds[2])
  # Reference weighted vote exp(sim / T) over sklearn's neighbours.
  sk = KNeighborsClassifier(n_neighbors=20, metric="cosine", algorithm="brute")
  dist_Nk, idx_Nk = sk.fit(train_x, train_y).kneighbors(test_x)
  votes_NK = np.zeros((len(test_x), 10))
  rows_N1 = np.arange(len(test_x))[:, None]
  np.add.at(votes_NK, (rows_N1, train_y[idx_Nk]), np.exp((1 - dist_Nk) / 0.07))
  np.testing.assert_array_equal(preds[0], votes_NK.argmax(1))
  plain = [probe_lib.knn_accuracy(train_x, train_y, test_x, test_y, 10, k=5, chunk=c)
           for c in (1, 64, 1024)]
  assert plain[0] == plain[1] == plain[2]


def test_errors_are_clear():
  x, y = _blobs(20, 4, 3, spread=1.0, seed=0)
  with pytest.raises(ValueError, match="20 feature rows but 19 labels"):
    probe_lib.linear_probe(x, y[:19], x, y, 3)
  with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
    probe_lib.knn_accuracy(x, y, x, y + 1, 3)
  with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
    probe_lib.fit_logistic_regression(x, y - 1, 3, 1e-3)
  with pytest.raises(ValueError, match="k must lie in"):
    probe_lib.knn_accuracy(x, y, x, y, 3, k=21)
  with pytest.raises(ValueError, match="test split is empty"):
    probe_lib.knn_accuracy(x, y, x[:0], y[:0], 3)
  with pytest.raises(ValueError, match="train split is empty"):
    probe_lib.linear_probe(x[:0], y[:0], x, y, 3)
  with pytest.raises(ValueError, match="train has 4 features per example, test has 3"):
    probe_lib.linear_probe(x, y, x[:, :3], y, 3)
  with pytest.raises(ValueError, match="NaN or inf"):
    probe_lib.knn_accuracy(np.where(x > 1, np.nan, x), y, x, y, 3)
  with pytest.raises(ValueError, match="holds out nothing"):
    probe_lib.linear_probe(x, y, x, y, 3, val_fraction=0.01)
