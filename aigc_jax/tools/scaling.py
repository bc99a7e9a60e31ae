"""Chinchilla-style scaling laws: fit L(N, D) = E + A / N**alpha + B / D**beta to a sweep of
runs (N parameters, D training tokens), bootstrap its uncertainty, derive the compute-optimal
allocation, and plot and tabulate the sweep.

The fit is Hoffmann et al. 2022 approach 3: a Huber loss on log L (robust to a few bad runs),
with log L_pred = logsumexp(a - alpha log N, b - beta log D, e), a = log A, b = log B,
e = log E, minimised by L-BFGS-B from a grid of starts. A prediction is stored before the run
it predicts exists (`predict_before`) and compared with naive predictors (`nearest_run`, `fit_n`).
"""

import dataclasses
import datetime
import itertools
import json
import os

import numpy as np
import scipy.optimize
import scipy.special
import threadpoolctl

from aigc_jax import writers
from aigc_jax.errors import ConfigError

NAMES = ("E", "A", "B", "alpha", "beta")
MIN_POINTS = 6  # distinct (N, D): more points than the 5 fitted parameters
MIN_LEVELS = 3  # distinct N, and distinct D: two leave an exponent free
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


def _objective(theta, *args):
  """Huber loss and its gradient in theta = (a, b, e, alpha, beta) for args (logN, logD, logL,
  delta); with one term, theta = (a, e, alpha) for (logN, logL, delta). Works on a (k, 5) or
  (k, 3) batch of thetas too (value only), for ranking the grid."""
  *logX, logL, delta = args
  k = len(logX)
  t = np.moveaxis(np.asarray(theta), -1, 0)[..., None]
  terms = np.stack(np.broadcast_arrays(*(t[i] - t[k + 1 + i] * x for i, x in enumerate(logX)),
                                       t[k]))
  top = terms.max(0)  # by hand: scipy's logsumexp costs more than the rest of the objective
  pred = top + np.log(np.exp(terms - top).sum(0))
  r = pred - logL
  value = scipy.special.huber(delta, r).sum(-1)
  if np.ndim(theta) > 1:
    return value
  w = np.exp(terms - pred) * np.clip(r, -delta, delta)  # softmax weights x Huber'
  return value, np.array([*w.sum(-1), *(-(w[i] * x).sum() for i, x in enumerate(logX))])


def _minimise(starts, logs, delta):
  # L-BFGS-B's 5-dimensional BLAS calls gain nothing from threads, and OpenBLAS threads made
  # them 25x slower on a busy 2-core machine.
  with threadpoolctl.threadpool_limits(1, user_api="blas"):
    return _minimise_serial(starts, logs, delta)


def _minimise_serial(starts, logs, delta):
  best = None
  for x0 in starts:
    # The Huber values are tiny (delta 1e-3), so scipy's default ftol stops far from the
    # minimum (100x the optimal objective here; Besiroglu et al. 2024 suspect the same of
    # Chinchilla's own fit): tighten it.
    res = scipy.optimize.minimize(_objective, x0, args=(*logs, delta), jac=True,
                                  method="L-BFGS-B",
                                  options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
    if np.all(np.isfinite(res.x)) and (best is None or res.fun < best.fun):
      best = res
  return best


def fit(N, D, L, *, delta=1e-3, grid=None, starts=32) -> Fit:
  """Fits the law to runs with N parameters, D tokens and final loss L (1-D, one per run).

  grid: rows (a, b, e, alpha, beta) of starting points (default CHINCHILLA_GRID); L-BFGS-B
  runs from the `starts` rows with the lowest initial objective (None: every row; all 4500 of
  Chinchilla's take about a minute for 24 runs, and found the same optimum as the best 32),
  and the best result is kept.
  """
  N, D, L = _arrays(N, D, L)
  if why := _unidentifiable(N, D):
    raise ConfigError(why)
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


def bootstrap(N, D, L, *, num=200, seed=0, delta=1e-3, starts=4, percentiles=(5.0, 95.0),
              at=None) -> dict:
  """Refits `num` resamples of the runs (drawn with replacement) for percentile intervals.

  Returns {name: {"estimate", "lo", "hi", "resamples"}} for E, A, B, alpha, beta and the
  compute-optimal exponents a = beta / (alpha + beta) (N_opt ~ C**a) and b = alpha / (alpha +
  beta) (D_opt ~ C**b), and with `at` = (N, D) the law's loss there ("predicted_loss"): the
  estimate from the full data, lo and hi the `percentiles` (a 90% interval by default) over the
  resamples that could be fitted (enough distinct runs, finite parameters). Each refit runs
  L-BFGS from the `starts` grid rows best on its own resample, never from the full-data optimum,
  which would pull every refit towards it and narrow the intervals.
  """
  N, D, L = _arrays(N, D, L)
  full = fit(N, D, L, delta=delta)
  rng = np.random.default_rng(seed)
  samples = []
  for _ in range(num):
    i = rng.integers(0, len(N), len(N))
    if _unidentifiable(N[i], D[i]):
      continue  # too few distinct runs drawn to pin five parameters
    with np.errstate(over="ignore"):  # a degenerate resample can send A or B to overflow
      values = _statistics(fit(N[i], D[i], L[i], delta=delta, starts=starts), at)
    if np.all(np.isfinite(values)):
      samples.append(values)
  if not samples:
    raise ConfigError(f"scaling.bootstrap: none of {num} resamples had {MIN_POINTS} distinct "
                      "(N, D) runs; add runs or raise num.")
  samples = np.array(samples)
  lo, hi = np.percentile(samples, percentiles, axis=0)
  names = NAMES + ("a", "b") + (("predicted_loss",) if at is not None else ())
  return {k: {"estimate": float(e), "lo": float(l), "hi": float(h), "resamples": len(samples)}
          for k, e, l, h in zip(names, _statistics(full, at), lo, hi)}


def _statistics(f: Fit, at) -> list[float]:
  values = [getattr(f, k) for k in NAMES] + [f.a, f.b]
  return values + ([float(f.predict(*at))] if at is not None else [])


@dataclasses.dataclass(frozen=True)
class PowerFit:
  """L(N) = E + A / N**alpha, a law of N alone: a naive predictor that ignores D."""
  E: float
  A: float
  alpha: float
  objective: float

  def predict(self, N):
    return self.E + self.A / np.asarray(N, np.float64)**self.alpha


def fit_n(N, L, *, delta=1e-3, starts=32) -> PowerFit:
  """Fits L(N) = E + A / N**alpha to runs at one token count, as `fit` does the full law
  (Huber on log L, L-BFGS-B from the best `starts` of Chinchilla's (a, e, alpha) grid)."""
  N, _, L = _arrays(N, N, L)  # N stands in for the D it ignores
  if len(set(N.tolist())) < 3:
    raise ConfigError(f"scaling.fit_n: {len(set(N.tolist()))} distinct N for 3 parameters (E, "
                      "A, alpha); pass at least 3 model sizes.")
  logs = (np.log(N), np.log(L))
  grid = np.unique(CHINCHILLA_GRID[:, [0, 2, 3]], axis=0)
  grid = grid[np.argsort(_objective(grid, *logs, delta), kind="stable")[:starts]]
  res = _minimise(grid, logs, delta)
  if res is None:
    raise ConfigError("scaling.fit_n: every start diverged; check that L is a loss (nats).")
  a, e, alpha = res.x
  return PowerFit(E=float(np.exp(e)), A=float(np.exp(a)), alpha=float(alpha),
                  objective=float(res.fun))


def nearest_run(runs, N, D) -> dict:
  """The run nearest to (N, D) in (log N, log D): the naive prediction is its loss."""
  n, d, _, _ = _columns(runs)
  return runs[int(np.argmin(np.hypot(np.log(n / N), np.log(d / D))))]


def check_extrapolation(N, D, N_new, D_new, *, min_n=4.0, min_d=2.0) -> tuple[float, float]:
  """(N_new / max N, D_new / max D), or a ConfigError if either is below its minimum: a
  prediction close to the fitted runs tests the law little (its N and D terms barely move)."""
  n_ratio = float(N_new / np.max(N))
  d_ratio = float(D_new / np.max(D))
  if n_ratio < min_n or d_ratio < min_d:
    raise ConfigError(
        f"The held-out run (N={N_new:,.0f}, D={D_new:,.0f}) is {n_ratio:.2f}x the largest "
        f"fitted N ({np.max(N):,.0f}) and {d_ratio:.2f}x the largest fitted D ({np.max(D):,.0f}); "
        f"a prediction must extrapolate at least {min_n:g}x in N and {min_d:g}x in D to test "
        "the law: enlarge the held-out run or shrink the fitted grid.")
  return n_ratio, d_ratio


def check_prediction_first(path: str, result_dirs) -> None:
  """Refuses a prediction at `path` once any of `result_dirs` (the predicted runs) exists
  without it: a prediction made after the result is not a prediction."""
  if os.path.exists(path):
    return
  if started := [d for d in result_dirs if os.path.exists(d)]:
    raise ConfigError(
        f"{path} is missing but the predicted run(s) {', '.join(started)} exist: a prediction "
        "made after (or while) the result exists is not a prediction. Delete those run "
        "directories (or the whole study workdir) and run the study again.")


def predict_before(path: str, result_dirs, make) -> dict:
  """The prediction stored at `path`, written from `make()` (a JSON-able dict) if absent, with
  the time it was made; refused as `check_prediction_first` says. A stored one is kept."""
  check_prediction_first(path, result_dirs)
  if not os.path.exists(path):
    made = dict(make(), made_at=datetime.datetime.now(datetime.timezone.utc).isoformat())
    writers.atomic_write(path, json.dumps(made, indent=1, default=float))
  with open(path) as f:
    return json.load(f)


def prediction_errors(predictions: dict, losses) -> dict:
  """Each predictor's {predicted_loss, error, relative_error, error_in_std} against the mean of
  `losses` (the held-out run's seeds); error = predicted - measured, std over seeds (ddof 1)."""
  losses = np.asarray(losses, np.float64)
  mean = float(losses.mean())
  std = float(losses.std(ddof=1)) if len(losses) > 1 else float("nan")
  out = {}
  for name, p in predictions.items():
    err = float(p) - mean
    out[name] = {"predicted_loss": float(p), "error": err, "relative_error": err / mean,
                 "error_in_std": err / std if std > 0 else float("nan")}
  return out


def compute_optimal(fit: Fit, C, flops_per_param_token=6.0):
  """(N_opt, D_opt, L_opt) minimising the fitted L at compute C = k N D (k =
  flops_per_param_token), in closed form; arrays shaped like C."""
  if not (fit.alpha > 0 and fit.beta > 0):
    raise ConfigError(f"scaling.compute_optimal: the fit has alpha={fit.alpha:.3g}, "
                      f"beta={fit.beta:.3g}; the loss must fall with both N and D (exponents > "
                      "0) for a compute-optimal size to exist. Check the sweep's runs.")
  C = np.asarray(C, np.float64)
  if not np.all(np.isfinite(C) & (C > 0)):
    raise ConfigError("scaling.compute_optimal: C must be positive, finite FLOPs.")
  G = (fit.alpha * fit.A / (fit.beta * fit.B)) ** (1 / (fit.alpha + fit.beta))
  n_opt = G * (C / flops_per_param_token) ** fit.a
  d_opt = C / flops_per_param_token / n_opt
  return n_opt, d_opt, fit.predict(n_opt, d_opt)


def _unidentifiable(N, D) -> str | None:
  """Why (N, D) cannot pin the five parameters, or None."""
  if (n := _distinct(N, D)) < MIN_POINTS:
    return (f"A scaling sweep whose fit has fewer points than parameters: {n} distinct (N, D) "
            f"run(s) for 5 parameters (E, A, B, alpha, beta); run at least {MIN_POINTS} (N, D) "
            "combinations, spanning several N and several D.")
  if min(len(set(N.tolist())), len(set(D.tolist()))) < MIN_LEVELS:
    return (f"scaling.fit: the runs have {len(set(N.tolist()))} distinct N and "
            f"{len(set(D.tolist()))} distinct D; alpha needs {MIN_LEVELS} or more model sizes "
            f"and beta {MIN_LEVELS} or more token counts (through two levels any exponent fits, "
            "E absorbing the rest).")
  return None


def _columns(runs):
  try:
    return [np.array([float(r[k]) for r in runs]) for k in ("N", "D", "loss", "flops")]
  except KeyError as e:
    raise ConfigError(f"scaling: a run lacks key {e}; each run is a dict with N, D, loss and "
                      "flops (6 N D).") from None


def format_count(x) -> str:
  """12000 -> "12k", 1.2e6 -> "1.2M"."""
  for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
    if abs(x) >= scale:
      return f"{x / scale:.3g}{suffix}"
  return f"{x:.3g}"


def _save(fig, path) -> str:
  return writers.save_figure(fig, path)


def _pyplot():
  return writers.pyplot()


def _colours(plt, values):
  """A colour per distinct value, evenly spaced on a log scale (sizes span decades)."""
  values = sorted(set(values))
  pos = np.log(values)
  pos = (pos - pos.min()) / max(np.ptp(pos), 1e-12)
  return {v: plt.cm.viridis(0.9 * p) for v, p in zip(values, pos)}


def plot_frontier(runs, fit: Fit | None, path: str, flops_per_param_token=6.0) -> str:
  """Loss against FLOPs, a line per model size, and the fitted compute-optimal frontier."""
  plt = _pyplot()
  N, _, L, F = _columns(runs)
  colours = _colours(plt, N)
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for n, colour in colours.items():
    i = np.flatnonzero(N == n)
    i = i[np.argsort(F[i])]
    ax.plot(F[i], L[i], "o-", color=colour, ms=4, label=format_count(n))
  if fit is not None:
    C = np.geomspace(F.min(), F.max(), 200)
    ax.plot(C, compute_optimal(fit, C, flops_per_param_token)[2], "k--",
            label="compute-optimal (fit)")
  ax.set_xscale("log")
  ax.set_xlabel("training FLOPs")
  ax.set_ylabel("loss")
  ax.grid(alpha=0.3, which="both")
  ax.legend(title="N", fontsize="small", ncol=2 if len(colours) > 8 else 1)
  return _save(fig, path)


def plot_loss_vs_params(runs, fit: Fit | None, path: str) -> str:
  """Loss against N at each token count D, with the fitted law's curves dashed."""
  plt = _pyplot()
  N, D, L, _ = _columns(runs)
  colours = _colours(plt, D)
  grid = np.geomspace(N.min(), N.max(), 100)
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for d, colour in colours.items():
    i = np.flatnonzero(D == d)
    i = i[np.argsort(N[i])]
    ax.plot(N[i], L[i], "o-", color=colour, ms=4, label=f"D={format_count(d)}")
    if fit is not None:
      ax.plot(grid, fit.predict(grid, d), "--", color=colour, lw=1)
  ax.set_xscale("log")
  ax.set_xlabel("parameters N")
  ax.set_ylabel("loss")
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize="small", ncol=2 if len(colours) > 8 else 1)
  return _save(fig, path)


def plot_isoloss(runs, fit: Fit, path: str, flops_per_param_token=6.0) -> str:
  """Contours of the fitted loss over (N, D), the runs, iso-FLOP lines and the compute-optimal
  path."""
  plt = _pyplot()
  N, D, _, _ = _columns(runs)
  k = flops_per_param_token
  # The runs and the compute-optimal path over their FLOP range, with half a decade of margin:
  # small sweeps are often far from the optimum (too few tokens per parameter).
  path_n, path_d, _ = compute_optimal(fit, np.geomspace((k * N * D).min(), (k * N * D).max(), 50),
                                     k)
  all_n, all_d = np.concatenate([N, path_n]), np.concatenate([D, path_d])
  n_grid = np.geomspace(all_n.min() / 3, all_n.max() * 3, 120)
  d_grid = np.geomspace(all_d.min() / 3, all_d.max() * 3, 120)
  loss = fit.predict(n_grid[None, :], d_grid[:, None])
  fig, ax = plt.subplots(figsize=(6.5, 5))
  levels = np.unique(np.quantile(loss, np.linspace(0, 1, 14)))
  filled = ax.contourf(n_grid, d_grid, loss, levels=levels, cmap="viridis_r", alpha=0.8)
  lines = ax.contour(n_grid, d_grid, loss, levels=levels[1:-1:2], colors="k", linewidths=0.5)
  ax.clabel(lines, fmt="%.3g", fontsize="x-small")
  fig.colorbar(filled, ax=ax, label="fitted loss")
  c_lo, c_hi = k * n_grid[0] * d_grid[0], k * n_grid[-1] * d_grid[-1]
  for c in 10.0 ** np.arange(np.ceil(np.log10(c_lo)), np.log10(c_hi) + 1e-9):
    ax.plot(n_grid, c / (k * n_grid), color="0.75", ls="--", lw=0.8)
  n_opt, d_opt, _ = compute_optimal(fit, np.geomspace(c_lo, c_hi, 200), k)
  ax.plot(n_opt, d_opt, "r-", lw=2, label="compute-optimal")
  ax.scatter(N, D, c="w", edgecolors="k", s=25, zorder=3, label="runs")
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlim(n_grid[0], n_grid[-1])
  ax.set_ylim(d_grid[0], d_grid[-1])
  ax.set_xlabel("parameters N")
  ax.set_ylabel("tokens D")
  ax.legend(fontsize="small", loc="upper left")
  return _save(fig, path)


def table_markdown(runs, fit: Fit | None = None) -> str:
  """The runs sorted by N then D; with a fit, its prediction and relative error too."""
  N, D, L, F = _columns(runs)
  head = ["N", "D (tokens)", "FLOPs", "loss"] + (["fit", "rel. error"] if fit is not None else [])
  lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
  for i in np.lexsort((D, N)):
    row = [format_count(N[i]), format_count(D[i]), f"{F[i]:.2e}", f"{L[i]:.4f}"]
    if fit is not None:
      pred = float(fit.predict(N[i], D[i]))
      row += [f"{pred:.4f}", f"{(pred - L[i]) / L[i]:+.2%}"]
    lines.append("| " + " | ".join(row) + " |")
  return "\n".join(lines) + "\n"


def predictions_markdown(errors: dict, losses) -> str:
  """`prediction_errors`' output as a table, under the seeds' measured losses."""
  losses = np.asarray(losses, np.float64)
  std = losses.std(ddof=1) if len(losses) > 1 else float("nan")
  lines = [f"measured over {len(losses)} seeds: {losses.mean():.4f} ± {std:.4f} (std; "
           + ", ".join(f"{x:.4f}" for x in losses) + ")", "",
           "| predictor | predicted | error | rel. error | error / seed std |",
           "|---|---:|---:|---:|---:|"]
  for name, e in errors.items():
    lines.append(f"| {name} | {e['predicted_loss']:.4f} | {e['error']:+.4f} | "
                 f"{e['relative_error']:+.2%} | {e['error_in_std']:+.1f} |")
  return "\n".join(lines) + "\n"
