"""Chinchilla-style scaling laws: fit L(N, D) = E + A / N**alpha + B / D**beta to a sweep of
runs (N parameters, D training tokens), bootstrap its uncertainty, derive the compute-optimal
allocation, and plot and tabulate the sweep.

The fit is Hoffmann et al. 2022 approach 3: a Huber loss on log L (robust to a few bad runs),
with log L_pred = logsumexp(a - alpha log N, b - beta log D, e), a = log A, b = log B,
e = log E, minimised by L-BFGS-B from a grid of starts.
"""

import dataclasses
import io
import itertools

import numpy as np
import scipy.optimize
import scipy.special
import threadpoolctl

from aigc_jax.errors import ConfigError

NAMES = ("E", "A", "B", "alpha", "beta")
MIN_POINTS = 6  # distinct (N, D): more points than the 5 fitted parameters
# Hoffmann et al.'s grid of starts, rows (a, b, e, alpha, beta): 4500 points.
CHINCHILLA_GRID = np.array(list(itertools.product(
    np.arange(0, 26, 5.0), np.arange(0, 26, 5.0), np.arange(-1, 1.01, 0.5),
    np.arange(0, 2.01, 0.5), np.arange(0, 2.01, 0.5))))


@dataclasses.dataclass(frozen=True)
class Fit:
  """L(N, D) = E + A / N**alpha + B / D**beta; `objective` is the Huber loss summed over runs."""
  E: float
  A: float
  B: float
  alpha: float
  beta: float
  objective: float
  num_points: int

  def predict(self, N, D):
    N, D = np.asarray(N, np.float64), np.asarray(D, np.float64)
    return self.E + self.A / N**self.alpha + self.B / D**self.beta

  @property
  def a(self) -> float:
    """N_opt grows as C**a."""
    return self.beta / (self.alpha + self.beta)

  @property
  def b(self) -> float:
    """D_opt grows as C**b."""
    return self.alpha / (self.alpha + self.beta)


def _arrays(N, D, L):
  arrays = [np.asarray(x, np.float64) for x in (N, D, L)]
  for name, x in zip("NDL", arrays):
    if x.ndim != 1:
      raise ConfigError(f"scaling.fit: {name} has shape {x.shape}; pass one value per run (1-D).")
    if not np.all(np.isfinite(x) & (x > 0)):
      raise ConfigError(f"scaling.fit: {name} has non-positive or non-finite values "
                        f"{x[~(np.isfinite(x) & (x > 0))][:5].tolist()}; drop those runs (a "
                        "diverged run's loss is NaN) before fitting.")
  if not len(arrays[0]) == len(arrays[1]) == len(arrays[2]):
    raise ConfigError(f"scaling.fit: N, D and L have lengths {[len(x) for x in arrays]}; "
                      "pass one value of each per run.")
  return arrays


def _distinct(N, D) -> int:
  return len(set(zip(N.tolist(), D.tolist())))


def _objective(theta, logN, logD, logL, delta):
  """Huber loss and its gradient in theta = (a, b, e, alpha, beta); works on a (k, 5) batch
  of thetas too (value only), for ranking the grid."""
  a, b, e, alpha, beta = np.moveaxis(np.asarray(theta), -1, 0)[..., None]
  terms = np.stack(np.broadcast_arrays(a - alpha * logN, b - beta * logD, e))
  top = terms.max(0)  # by hand: scipy's logsumexp costs more than the rest of the objective
  pred = top + np.log(np.exp(terms - top).sum(0))
  r = pred - logL
  value = scipy.special.huber(delta, r).sum(-1)
  if np.ndim(theta) > 1:
    return value
  w = np.exp(terms - pred) * np.clip(r, -delta, delta)  # softmax weights x Huber'
  grad = np.array([w[0].sum(), w[1].sum(), w[2].sum(), -(w[0] * logN).sum(),
                   -(w[1] * logD).sum()])
  return value, grad


def _minimise(starts, logs, delta):
  # L-BFGS-B's 5-dimensional BLAS calls gain nothing from threads, and OpenBLAS threads made
  # them 25x slower on a busy 2-core machine.
  with threadpoolctl.threadpool_limits(1, user_api="blas"):
    return _minimise_serial(starts, logs, delta)


def _minimise_serial(starts, logs, delta):
  best = None
  for x0 in starts:
    # The Huber values are tiny (delta 1e-3), so scipy's default ftol stops far from the
    # minimum (the flaw Besiroglu et al. 2024 found in Chinchilla's own fit): tighten it.
    res = scipy.optimize.minimize(_objective, x0, args=(*logs, delta), jac=True,
                                  method="L-BFGS-B",
                                  options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
    if np.all(np.isfinite(res.x)) and (best is None or res.fun < best.fun):
      best = res
  return best


def fit(N, D, L, *, delta=1e-3, grid=None, starts=32) -> Fit:
  """Fits the law to runs with N parameters, D tokens and final loss L (1-D, one per run).

  grid: rows (a, b, e, alpha, beta) of starting points (default CHINCHILLA_GRID); L-BFGS-B
  runs from the `starts` rows with the lowest initial objective (None: every row), since
  running all 4500 of Chinchilla's would take tens of seconds, and the best result is kept.
  """
  N, D, L = _arrays(N, D, L)
  if (n := _distinct(N, D)) < MIN_POINTS:
    raise ConfigError(f"A scaling sweep whose fit has fewer points than parameters: {n} "
                      f"distinct (N, D) run(s) for 5 parameters (E, A, B, alpha, beta); run at "
                      f"least {MIN_POINTS} (N, D) combinations, spanning several N and several D.")
  if len(set(N.tolist())) < 2 or len(set(D.tolist())) < 2:
    raise ConfigError(f"scaling.fit: the runs have {len(set(N.tolist()))} distinct N and "
                      f"{len(set(D.tolist()))} distinct D; alpha needs several model sizes and "
                      "beta several token counts.")
  logs = (np.log(N), np.log(D), np.log(L))
  grid = CHINCHILLA_GRID if grid is None else np.asarray(grid, np.float64).reshape(-1, 5)
  if starts is not None and starts < len(grid):
    grid = grid[np.argsort(_objective(grid, *logs, delta), kind="stable")[:starts]]
  res = _minimise(grid, logs, delta)
  if res is None:
    raise ConfigError("scaling.fit: every start diverged; check that L is a loss (nats) and N, "
                      "D are counts, or pass a grid of starts near the expected values.")
  a, b, e, alpha, beta = res.x
  return Fit(E=float(np.exp(e)), A=float(np.exp(a)), B=float(np.exp(b)), alpha=float(alpha),
             beta=float(beta), objective=float(res.fun), num_points=len(N))
