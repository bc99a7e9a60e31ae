"""Linear-probe and k-NN accuracy of frozen features (host arrays), as reported by representation
learning papers.

Both are jitted and compile once per shape: the logistic regression is full-batch L-BFGS (optax,
zoom line search) inside one `lax.while_loop`, and the l2 search reuses that compilation by
masking the held-out examples out of the loss instead of slicing them away. k-NN walks the test
set in fixed-size chunks with `lax.map`, so memory is O(chunk x N_train) whatever the test size.
Matmuls use HIGHEST precision so accelerators (TF32 / bf16 defaults) agree with the CPU.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu

_HIGHEST = jax.lax.Precision.HIGHEST


def _check_split(name, x_NF, y_N, num_classes):
  """Validated host copies: 2-D finite features, integer labels in [0, num_classes)."""
  x_NF = np.asarray(x_NF)
  y_N = np.asarray(y_N)
  if x_NF.ndim != 2:
    raise ValueError(f"{name} features must be 2-D (examples, features), got shape {x_NF.shape}")
  if y_N.ndim != 1:
    raise ValueError(f"{name} labels must be 1-D, got shape {y_N.shape}")
  if len(x_NF) != len(y_N):
    raise ValueError(f"{name} has {len(x_NF)} feature rows but {len(y_N)} labels")
  if len(x_NF) == 0:
    raise ValueError(f"{name} split is empty")
  if not np.issubdtype(y_N.dtype, np.integer):
    raise ValueError(f"{name} labels must be integers, got dtype {y_N.dtype}")
  if y_N.min() < 0 or y_N.max() >= num_classes:
    raise ValueError(f"{name} labels must lie in [0, {num_classes}) (num_classes={num_classes}), "
                     f"got range [{y_N.min()}, {y_N.max()}]")
  if not np.isfinite(x_NF).all():
    raise ValueError(f"{name} features contain NaN or inf")
  return x_NF, y_N.astype(np.int32)


def _check_pair(train_x, train_y, test_x, test_y, num_classes):
  if int(num_classes) != num_classes or num_classes < 1:
    raise ValueError(f"num_classes must be a positive integer, got {num_classes}")
  train_x, train_y = _check_split("train", train_x, train_y, num_classes)
  test_x, test_y = _check_split("test", test_x, test_y, num_classes)
  if train_x.shape[1] != test_x.shape[1]:
    raise ValueError(f"train has {train_x.shape[1]} features per example, test has "
                     f"{test_x.shape[1]}")
  return train_x, train_y, test_x, test_y


def standardize(train_NF, *others) -> tuple:
  """Z-scores every array with the TRAIN mean and std (floored at 1e-6 so constant features stay
  finite), so nothing about the other splits leaks into the transform. float32 out, float64
  statistics."""
  return _standardize_with(train_NF, train_NF, *others)


def _standardize_with(stats_NF, *arrays):
  """`arrays` z-scored with the mean and std of `stats_NF`."""
  stats_NF = np.asarray(stats_NF)
  mean_F = stats_NF.mean(axis=0, dtype=np.float64)
  std_F = np.maximum(stats_NF.std(axis=0, dtype=np.float64), 1e-6)
  mean_F, inv_F = mean_F.astype(np.float32), (1.0 / std_F).astype(np.float32)
  return tuple((np.asarray(x, np.float32) - mean_F) * inv_F for x in arrays)


@functools.partial(jax.jit, static_argnames=("num_classes",))
def _fit(x_NF, y_N, weight_N, params, l2, max_iter, tol, *, num_classes):
  """L-BFGS on the weighted mean cross-entropy + 0.5 l2 |W|^2 from `params`; returns the final
  params, iteration count and max |gradient|.

  Stops when max |gradient| <= tol (scipy's / sklearn's gtol), at max_iter, or when an iteration
  no longer lowers the loss: in float32 the gradient's rounding noise can sit above a small tol,
  and further iterations would only burn time.
  """
  onehot_NK = jax.nn.one_hot(y_N, num_classes, dtype=x_NF.dtype)
  weight_N = weight_N / jnp.sum(weight_N)

  def loss(p):
    logits_NK = jnp.dot(x_NF, p["W"], precision=_HIGHEST) + p["b"][None, :]
    nll_N = -jnp.sum(onehot_NK * jax.nn.log_softmax(logits_NK), axis=1)
    return jnp.dot(weight_N, nll_N) + 0.5 * l2 * jnp.sum(jnp.square(p["W"]))

  opt = optax.lbfgs(linesearch=optax.scale_by_zoom_linesearch(
      max_linesearch_steps=30, initial_guess_strategy="one"))
  value_and_grad = optax.value_and_grad_from_state(loss)

  def grad_max(state):
    return otu.tree_max(jax.tree.map(jnp.abs, otu.tree_get(state, "grad")))

  def step(carry):
    p, state, _ = carry
    value, grad = value_and_grad(p, state=state)
    updates, state = opt.update(grad, state, p, value=value, grad=grad, value_fn=loss)
    return optax.apply_updates(p, updates), state, value

  def keep_going(carry):
    _, state, prev_value = carry
    count = otu.tree_get(state, "count")
    decreased = otu.tree_get(state, "value") <= prev_value
    return (count == 0) | ((count < max_iter) & (grad_max(state) > tol) & decreased)

  carry = (params, opt.init(params), jnp.array(jnp.inf, x_NF.dtype))
  params, state, _ = jax.lax.while_loop(keep_going, step, carry)
  return params, otu.tree_get(state, "count"), grad_max(state)


def _zeros(num_features, num_classes):
  return {"W": jnp.zeros((num_features, num_classes), jnp.float32),
          "b": jnp.zeros((num_classes,), jnp.float32)}


def _run_fit(x_NF, y_N, weight_N, params, l2, max_iter, tol, num_classes):
  return _fit(x_NF, y_N, weight_N, params, jnp.float32(l2), jnp.int32(max_iter),
              jnp.float32(tol), num_classes=num_classes)


def fit_logistic_regression(x_NF, y_N, num_classes, l2, *, max_iter=500, tol=1e-6):
  """Multinomial logistic regression: minimises mean cross-entropy + 0.5 * l2 * |W|^2 (bias not
  regularised), i.e. scikit-learn's LogisticRegression with C = 1 / (l2 * N). Full batch L-BFGS,
  float32; `tol` bounds max |gradient|. Returns host arrays (W_FK, b_K)."""
  x_NF, y_N = _check_split("train", x_NF, y_N, num_classes)
  if l2 < 0:
    raise ValueError(f"l2 must be >= 0, got {l2}")
  x_NF = jnp.asarray(x_NF, jnp.float32)
  params, _, _ = _run_fit(x_NF, jnp.asarray(y_N), jnp.ones(len(y_N), jnp.float32),
                          _zeros(x_NF.shape[1], num_classes), l2, max_iter, tol, num_classes)
  return np.asarray(params["W"]), np.asarray(params["b"])


def _accuracy(x_NF, y_N, params, mask_N=None):
  pred_N = np.argmax(np.asarray(x_NF) @ np.asarray(params["W"]) + np.asarray(params["b"]), axis=1)
  correct_N = pred_N == np.asarray(y_N)
  return float(correct_N.mean() if mask_N is None else correct_N[mask_N].mean())


def _stratified_holdout(y_N, val_fraction, seed):
  """Boolean mask of a seeded held-out subset with round(val_fraction * n_c) examples of each class
  c, keeping at least one of every class for training."""
  rng = np.random.default_rng(seed)
  val_N = np.zeros(len(y_N), bool)
  for c in np.unique(y_N):
    idx = np.flatnonzero(y_N == c)
    n_val = min(int(round(val_fraction * len(idx))), len(idx) - 1)
    val_N[rng.permutation(idx)[:n_val]] = True
  return val_N


def linear_probe(train_x, train_y, test_x, test_y, num_classes, *,
                 l2_grid=(1e-5, 1e-4, 1e-3, 1e-2, 1e-1), val_fraction=0.1, seed=0,
                 max_iter=500, tol=1e-6) -> dict:
  """Logistic-regression probe on standardised features.

  l2 is chosen on a seeded, stratified `val_fraction` of the TRAIN examples (the test set is only
  scored once, at the end); ties go to the larger l2. The grid is walked from the largest l2 down,
  each fit warm-started from the previous one (the regularisation path: the small-l2, badly
  conditioned problems start near their optimum), then the chosen l2 is refit on all train
  examples. A one-value grid skips the selection (val_accuracy is then None).
  """
  train_x, train_y, test_x, test_y = _check_pair(train_x, train_y, test_x, test_y, num_classes)
  l2_grid = sorted({float(v) for v in l2_grid}, reverse=True)
  if not l2_grid or min(l2_grid) < 0:
    raise ValueError(f"l2_grid must be a non-empty list of values >= 0, got {l2_grid}")
  if not 0 < val_fraction < 1:
    raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
  num_features = train_x.shape[1]
  y_N = jnp.asarray(train_y)
  params = _zeros(num_features, num_classes)
  best_l2, best_val = l2_grid[0], None

  if len(l2_grid) > 1:
    val_N = _stratified_holdout(train_y, val_fraction, seed)
    if not val_N.any():
      raise ValueError(f"val_fraction={val_fraction} of {len(train_y)} train examples holds out "
                       "nothing to choose l2 on; raise val_fraction or pass a single l2")
    # Held-out rows get weight 0 rather than being dropped: same shapes, so no recompilation.
    (val_x,) = _standardize_with(train_x[~val_N], train_x)  # statistics of the fit rows only
    x_NF = jnp.asarray(val_x)
    weight_N = jnp.asarray(~val_N, jnp.float32)
    for l2 in l2_grid:
      params, _, _ = _run_fit(x_NF, y_N, weight_N, params, l2, max_iter, tol, num_classes)
      acc = _accuracy(val_x, train_y, params, val_N)
      if best_val is None or acc > best_val:
        best_l2, best_val, best_params = l2, acc, params
    params = best_params

  train_x, test_x = standardize(train_x, test_x)
  params, _, _ = _run_fit(jnp.asarray(train_x), y_N, jnp.ones(len(train_y), jnp.float32), params,
                          best_l2, max_iter, tol, num_classes)
  return {"accuracy": _accuracy(test_x, test_y, params),
          "train_accuracy": _accuracy(train_x, train_y, params),
          "l2": best_l2,
          "val_accuracy": best_val}


def _l2_normalize(x_NF):
  return x_NF / jnp.maximum(jnp.linalg.norm(x_NF, axis=1, keepdims=True), 1e-12)


@functools.partial(jax.jit, static_argnames=("num_classes", "k", "temperature", "chunk"))
def _knn_predict(train_NF, train_y_N, test_NF, *, num_classes, k, temperature, chunk):
  train_NF = _l2_normalize(train_NF)
  test_CBF = _l2_normalize(test_NF).reshape(-1, chunk, test_NF.shape[1])

  def predict_chunk(test_BF):
    sim_BN = jnp.dot(test_BF, train_NF.T, precision=_HIGHEST)
    sim_Bk, idx_Bk = jax.lax.top_k(sim_BN, k)  # sorted, nearest first
    onehot_BkK = jax.nn.one_hot(train_y_N[idx_Bk], num_classes, dtype=jnp.float32)
    if temperature > 0:
      # Shifting by the top similarity leaves the argmax unchanged and keeps exp finite. (A max,
      # not sim_Bk[:, :1]: XLA:CPU turns a slice of top_k's values into a full sort, 10x slower.)
      weight_Bk = jnp.exp((sim_Bk - jnp.max(sim_Bk, axis=1, keepdims=True)) / temperature)
      return jnp.argmax(jnp.sum(weight_Bk[:, :, None] * onehot_BkK, axis=1), axis=1)
    # Integer key votes * (k + 1) + (k - rank of the class's nearest member): more votes win, and
    # among tied classes the one with the nearer neighbour wins. Exact in float32 for k < 2^11.
    votes_BK = jnp.sum(onehot_BkK, axis=1)
    rank_k = jnp.arange(k, dtype=jnp.float32)
    nearest_BK = jnp.min(jnp.where(onehot_BkK > 0, rank_k[None, :, None], float(k)), axis=1)
    return jnp.argmax(votes_BK * (k + 1) + (k - nearest_BK), axis=1)

  return jax.lax.map(predict_chunk, test_CBF).reshape(-1)


def knn_predict(train_x, train_y, test_x, num_classes, *, k=20, temperature=0.0, chunk=1024):
  """k-NN class predictions for `test_x` under cosine similarity (see `knn_accuracy`)."""
  train_x, train_y = _check_split("train", train_x, train_y, num_classes)
  test_x = np.asarray(test_x)
  if test_x.ndim != 2 or test_x.shape[1] != train_x.shape[1] or len(test_x) == 0:
    raise ValueError(f"test features must be a non-empty (examples, {train_x.shape[1]}) array, "
                     f"got shape {test_x.shape}")
  if not 1 <= k <= len(train_x):
    raise ValueError(f"k must lie in [1, number of train examples = {len(train_x)}], got {k}")
  if temperature < 0:
    raise ValueError(f"temperature must be >= 0, got {temperature}")
  if chunk < 1:
    raise ValueError(f"chunk must be >= 1, got {chunk}")
  n = len(test_x)
  chunk = min(int(chunk), n)  # no padding work beyond the test set itself
  padded = np.zeros((-(-n // chunk) * chunk, test_x.shape[1]), np.float32)
  padded[:n] = test_x
  pred = _knn_predict(jnp.asarray(train_x, jnp.float32), jnp.asarray(train_y), jnp.asarray(padded),
                      num_classes=num_classes, k=int(k), temperature=float(temperature),
                      chunk=chunk)
  return np.asarray(pred)[:n]


def knn_accuracy(train_x, train_y, test_x, test_y, num_classes, *, k=20, temperature=0.0,
                 chunk=1024) -> float:
  """Test accuracy of a k-nearest-neighbour classifier on L2-normalised features (cosine
  similarity), `chunk` test examples at a time.

  temperature == 0: plain majority vote of the k nearest; a tie goes to the tied class with the
  nearest neighbour (for k=2 that is 1-NN). scikit-learn instead gives ties to the smallest class
  index, so the two can differ on tied test examples only.
  temperature > 0: votes weighted by exp(similarity / temperature), as in Wu et al. 2018 and DINO
  (which use k=20 or 200, temperature=0.07).
  """
  train_x, train_y, test_x, test_y = _check_pair(train_x, train_y, test_x, test_y, num_classes)
  pred = knn_predict(train_x, train_y, test_x, num_classes, k=k, temperature=temperature,
                     chunk=chunk)
  return float(np.mean(pred == test_y))
