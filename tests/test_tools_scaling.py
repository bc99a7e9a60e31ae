"""Scaling-law fits against synthetic sweeps drawn from a known law (numpy and scipy only)."""

import numpy as np
import pytest
import scipy.optimize

from aigc_jax.tools import scaling
from aigc_jax.errors import ConfigError

TRUE = {"E": 1.5, "A": 400.0, "alpha": 0.34, "B": 410.0, "beta": 0.28}


def _law(N, D):
  return TRUE["E"] + TRUE["A"] / N**TRUE["alpha"] + TRUE["B"] / D**TRUE["beta"]


def _sweep(seed=0, sigma=0.003):
  """6 model sizes x 4 token counts, the loss with multiplicative log-normal noise."""
  N, D = np.meshgrid(np.geomspace(1e4, 3e6, 6), np.geomspace(1e6, 5e7, 4), indexing="ij")
  N, D = N.ravel(), D.ravel()
  return N, D, _law(N, D) * np.random.default_rng(seed).lognormal(0.0, sigma, N.size)


@pytest.fixture(scope="module")
def sweep_fit():
  N, D, L = _sweep()
  return (N, D, L), scaling.fit(N, D, L)


def test_fit_recovers_the_law_and_predicts_a_held_out_run(sweep_fit):
  _, f = sweep_fit
  assert abs(f.alpha - TRUE["alpha"]) < 0.05 and abs(f.beta - TRUE["beta"]) < 0.05
  assert f.E == pytest.approx(TRUE["E"], rel=0.05)
  assert f.num_points == 24 and f.objective >= 0
  N, D = np.array([1e7, 3e7]), np.array([2e8, 1e8])  # beyond the sweep in both directions
  np.testing.assert_allclose(f.predict(N, D), _law(N, D), rtol=0.01)
  assert f.predict(N[:, None], D[None, :]).shape == (2, 2)


def test_fit_is_a_minimum_no_worse_than_the_truth(sweep_fit):
  """Catches an optimiser that stops early (scipy's default ftol does, at these tiny Huber
  values): the true parameters must not score better, nor a restart from the optimum."""
  (N, D, L), f = sweep_fit
  logs = (np.log(N), np.log(D), np.log(L))
  truth = np.log([TRUE["A"], TRUE["B"], TRUE["E"]]).tolist() + [TRUE["alpha"], TRUE["beta"]]
  assert f.objective <= scaling._objective(np.array(truth), *logs, 1e-3)[0]
  x = np.log([f.A, f.B, f.E]).tolist() + [f.alpha, f.beta]
  again = scaling.fit(N, D, L, grid=[x])
  assert again.objective == pytest.approx(f.objective, rel=1e-6)
  assert again.alpha == pytest.approx(f.alpha, abs=1e-4)


def test_too_few_points_is_a_clear_error():
  N, D, L = _sweep()
  # 10 runs, but only 5 distinct (N, D): repeats do not pin a fifth parameter.
  idx = np.array([0, 5, 10, 15, 20] * 2)
  with pytest.raises(ConfigError, match=r"fewer points than parameters: 5 distinct.*at least 6"):
    scaling.fit(N[idx], D[idx], L[idx])


@pytest.mark.parametrize("bad, match", [
    (lambda N, D, L: (N, D, np.where(np.arange(L.size) == 3, np.nan, L)), "non-finite"),
    (lambda N, D, L: (-N, D, L), "non-positive"),
    (lambda N, D, L: (N, D[:-1], L), "lengths"),
    (lambda N, D, L: (N[:, None], D, L), "1-D"),
    (lambda N, D, L: (N, np.full_like(D, 1e7), L), "6 distinct N and 1 distinct D"),
])
def test_bad_inputs_are_config_errors(bad, match):
  with pytest.raises(ConfigError, match=match):
    scaling.fit(*bad(*_sweep()))


def test_compute_optimal_matches_brute_force(sweep_fit):
  _, f = sweep_fit
  C = np.array([1e15, 1e18, 1e21])
  for k in (6.0, 8.0):
    n_opt, d_opt, l_opt = scaling.compute_optimal(f, C, flops_per_param_token=k)
    np.testing.assert_allclose(k * n_opt * d_opt, C, rtol=1e-12)
    for c, n, l in zip(C, n_opt, l_opt):
      res = scipy.optimize.minimize_scalar(
          lambda logn, c=c: f.predict(np.exp(logn), c / (k * np.exp(logn))),
          bounds=(np.log(10.0), np.log(c / k / 10.0)), method="bounded",
          options={"xatol": 1e-9})
      assert n == pytest.approx(np.exp(res.x), rel=1e-3)
      assert l == pytest.approx(res.fun, rel=1e-9)
  n1, _, _ = scaling.compute_optimal(f, 1e18)
  n2, _, _ = scaling.compute_optimal(f, 1e19)
  assert np.log10(n2 / n1) == pytest.approx(f.a)  # N_opt ~ C**a
  with pytest.raises(ConfigError, match="positive"):
    scaling.compute_optimal(f, [1e18, -1.0])


def test_bootstrap_interval_covers_estimate_and_truth(sweep_fit):
  (N, D, L), f = sweep_fit
  boot = scaling.bootstrap(N, D, L, num=30, seed=1)
  assert set(boot) == {"E", "A", "B", "alpha", "beta", "a", "b"}
  for name, r in boot.items():
    assert r["lo"] <= r["estimate"] <= r["hi"], name
    assert 20 <= r["resamples"] <= 30
  assert boot["alpha"]["estimate"] == f.alpha
  assert boot["a"]["estimate"] + boot["b"]["estimate"] == pytest.approx(1.0)
  assert boot["alpha"]["hi"] - boot["alpha"]["lo"] < 0.03  # low noise: a tight interval
  # This noise draw puts alpha 1.2 standard deviations (0.0027, measured over 40 draws) above
  # the truth, on the edge of a 90% interval from few resamples: a 98% one must contain it.
  wide = scaling.bootstrap(N, D, L, num=60, seed=0, percentiles=(1, 99))
  truth = dict(TRUE, a=TRUE["beta"] / (TRUE["alpha"] + TRUE["beta"]))
  for name in ("alpha", "beta", "E", "a"):
    assert wide[name]["lo"] <= truth[name] <= wide[name]["hi"], (name, wide[name])


def test_bootstrap_refits_from_several_starts_never_the_full_optimum(sweep_fit, monkeypatch):
  """Starting every refit at the full-data optimum would pull it there and narrow the intervals:
  each refit starts from several grid rows ranked on its own resample."""
  (N, D, L), f = sweep_fit
  optimum = np.log([f.A, f.B, f.E]).tolist() + [f.alpha, f.beta]
  calls, minimise = [], scaling._minimise
  monkeypatch.setattr(scaling, "_minimise", lambda starts, *a: (calls.append(np.array(starts)),
                                                               minimise(starts, *a))[1])
  boot = scaling.bootstrap(N, D, L, num=6, seed=2, starts=4, at=(1e7, 2e8))
  refits = calls[1:]  # the first is the full fit, from 32 starts
  assert len(calls[0]) == 32 and len(refits) == boot["alpha"]["resamples"] == 6
  for starts in refits:
    assert len(starts) == 4 and len(np.unique(starts, axis=0)) == 4
    assert not np.any(np.all(np.isclose(starts, optimum, atol=1e-3), axis=1))
  assert len({s.tobytes() for s in refits}) > 1  # ranked on each resample, not once
  p = boot["predicted_loss"]
  assert p["estimate"] == pytest.approx(float(f.predict(1e7, 2e8)))
  assert p["lo"] <= p["estimate"] <= p["hi"]


def test_naive_predictors():
  runs = [{"N": n, "D": d, "loss": 1.0 + i, "flops": 6 * n * d}
          for i, (n, d) in enumerate([(1e4, 1e6), (1e5, 1e6), (1e5, 4e6), (1e6, 1e5)])]
  # Nearest in (log N, log D): 3x in N and 1.33x in D is nearer than 3x in both.
  assert scaling.nearest_run(runs, 3e5, 3e6) is runs[2]
  assert scaling.nearest_run(runs, 2e6, 1e5) is runs[3]
  N = np.geomspace(1e4, 1e6, 6)
  law = lambda n: 1.2 + 30.0 / n**0.3  # noqa: E731
  f = scaling.fit_n(N, law(N) * np.random.default_rng(0).lognormal(0.0, 1e-4, N.size))
  assert f.E == pytest.approx(1.2, rel=0.02) and f.alpha == pytest.approx(0.3, abs=0.01)
  assert f.A == pytest.approx(30.0, rel=0.1)
  assert f.predict(4e6) == pytest.approx(law(4e6), rel=1e-3)
  with pytest.raises(ConfigError, match="2 distinct N for 3 parameters"):
    scaling.fit_n(N[:2], law(N[:2]))


def test_a_held_out_run_must_extrapolate_4x_in_n_and_2x_in_d():
  N, D = [1e4, 2e5, 7.9e5], [1e5, 4e5, 4e5]
  assert scaling.check_extrapolation(N, D, 3.555e6, 8e5) == pytest.approx((4.5, 2.0))
  with pytest.raises(ConfigError, match=r"1.33x the largest fitted N .*at least 4x in N"):
    scaling.check_extrapolation(N, D, 1.05e6, 8e5)
  with pytest.raises(ConfigError, match=r"1.50x the largest fitted D"):
    scaling.check_extrapolation(N, D, 4e6, 6e5)


def test_a_prediction_is_refused_once_its_run_exists(tmp_path):
  path, run = str(tmp_path / "prediction.json"), tmp_path / "heldout"
  made = []
  make = lambda: made.append(1) or {"predicted_loss": 1.5}  # noqa: E731
  run.mkdir()
  with pytest.raises(ConfigError, match="made after .* is not a prediction"):
    scaling.predict_before(path, [str(run)], make)
  assert not made and not (tmp_path / "prediction.json").exists()
  run.rmdir()
  first = scaling.predict_before(path, [str(run)], make)
  assert first["predicted_loss"] == 1.5 and "made_at" in first and made == [1]
  run.mkdir()  # the run starts after the prediction: a resumed study reads the stored one
  assert scaling.predict_before(path, [str(run)], lambda: {"predicted_loss": 9.0}) == first


def test_prediction_errors_against_the_seeds_mean():
  errors = scaling.prediction_errors({"fit": 1.61, "naive": 1.70}, [1.60, 1.62, 1.58])
  assert errors["fit"]["error"] == pytest.approx(0.01)
  assert errors["fit"]["relative_error"] == pytest.approx(0.01 / 1.6)
  assert errors["naive"]["error_in_std"] == pytest.approx(0.1 / 0.02)
  table = scaling.predictions_markdown(errors, [1.60, 1.62, 1.58])
  assert table.startswith("measured over 3 seeds: 1.6000 ± 0.0200")
  assert "| naive | 1.7000 | +0.1000 | +6.25% | +5.0 |" in table


def _runs():
  N, D, L = _sweep()
  return [{"N": n, "D": d, "loss": l, "flops": 6 * n * d} for n, d, l in zip(N, D, L)]


def test_plots_write_pngs(tmp_path, sweep_fit):
  _, f = sweep_fit
  runs = _runs()
  for plot in (scaling.plot_frontier, scaling.plot_loss_vs_params, scaling.plot_isoloss):
    path = str(tmp_path / "plots" / f"{plot.__name__}.png")
    assert plot(runs, f, path) == path
    with open(path, "rb") as fh:
      assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
  with pytest.raises(ConfigError, match="flops"):
    scaling.plot_frontier([{"N": 1, "D": 2, "loss": 3.0}], f, str(tmp_path / "x.png"))


def test_table_is_sorted_and_reports_the_fit_error(sweep_fit):
  _, f = sweep_fit
  runs = _runs()[::-1]
  lines = scaling.table_markdown(runs, f).strip().splitlines()
  assert lines[0] == "| N | D (tokens) | FLOPs | loss | fit | rel. error |"
  rows = [line.strip("| ").split(" | ") for line in lines[2:]]
  assert len(rows) == 24 and rows[0][:2] == ["10k", "1M"] and rows[-1][:2] == ["3M", "50M"]
  errors = [abs(float(r[5].rstrip("%"))) for r in rows]
  assert max(errors) < 2.0  # percent: noise 0.3%, the fit close to the truth
  assert len(scaling.table_markdown(runs).splitlines()[0].split("|")) == 6


def test_format_count():
  assert [scaling.format_count(x) for x in (950, 12e3, 1.2e6, 3.45e9)] == [
      "950", "12k", "1.2M", "3.45B"]
