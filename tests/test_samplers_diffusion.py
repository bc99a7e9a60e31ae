"""The diffusion samplers against closed forms: Gaussian data has an exact denoiser, a Gaussian
marginal at every t, and a probability-flow ODE whose solution is an affine map of the noise."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aigc_jax.samplers import diffusion

MU = np.array([[1.0, -0.5, 0.0]])  # [1, 3]: broadcast over samples explicitly
STD = np.array([[0.5, 2.0, 0.2]])
CASES = [("vp", "cosine"), ("vp", "linear"), ("flow", "")]


def exact_denoiser(process):
  """E[x0 | x_t] for x0 ~ N(MU, STD^2), and the eps it implies."""
  def denoise(x, t):
    a, s = process.alpha_sigma(t)
    x0 = MU + a * STD**2 / (a**2 * STD**2 + s**2) * (x - a * MU)
    eps = jnp.where(s > 0, (x - a * x0) / jnp.maximum(s, 1e-30), 0.0)
    return x0, eps
  return denoise


def ode_solution(process, x1):
  """The probability-flow ODE keeps (x_t - alpha_t MU) / std_t fixed for Gaussian data."""
  a1, s1 = process.alpha_sigma(1.0)
  a0, s0 = process.alpha_sigma(0.0)
  z = (x1 - a1 * MU) / jnp.sqrt(a1**2 * STD**2 + s1**2)
  return a0 * MU + jnp.sqrt(a0**2 * STD**2 + s0**2) * z


def run(process, sampler, steps, x1, key=0, eta=0.0):
  fn = jax.jit(lambda x, k: diffusion.sample(exact_denoiser(process), process, x, k,
                                             sampler=sampler, steps=steps, eta=eta))
  return fn(x1, jax.random.PRNGKey(key))


@pytest.mark.parametrize("process_name,schedule", CASES)
def test_deterministic_samplers_solve_the_ode(process_name, schedule):
  process = diffusion.Process(process_name, schedule or "cosine")
  x1 = jax.random.normal(jax.random.PRNGKey(0), (256, 3))
  want = ode_solution(process, x1)
  scale = float(jnp.max(jnp.abs(want)))
  errors = {}
  for sampler, steps in (("ddim", 200), ("euler", 200), ("heun", 100), ("dpm++2m", 100)):
    got = run(process, sampler, steps, x1)
    errors[sampler] = float(jnp.max(jnp.abs(got - want)))
    assert errors[sampler] < 2e-2 * scale, (sampler, errors)
  # Order of convergence: doubling the steps from 40 to 80 halves a first-order method's error
  # and quarters a second-order one's (DPM-Solver++(2M) is first order on its first and last
  # steps, so it lands between: measured 0.23-0.31).
  err = {(m, n): float(jnp.max(jnp.abs(run(process, m, n, x1) - want)))
         for m in ("ddim", "euler", "heun", "dpm++2m") for n in (40, 80)}
  ratio = {m: err[(m, 80)] / err[(m, 40)] for m in ("ddim", "euler", "heun", "dpm++2m")}
  assert 0.45 < ratio["ddim"] < 0.55 and 0.45 < ratio["euler"] < 0.55, ratio
  assert ratio["heun"] < 0.3 and ratio["dpm++2m"] < 0.35, ratio


@pytest.mark.parametrize("process_name,schedule", CASES)
@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpm++2m", "heun"])
def test_samples_have_the_data_distribution(process_name, schedule, sampler):
  process = diffusion.Process(process_name, schedule or "cosine")
  n = 20_000
  x1 = jax.random.normal(jax.random.PRNGKey(1), (n, 3))
  # The stochastic samplers' reverse steps are Gaussian around the mean x0, so they converge in
  # the number of steps more slowly (first order) than the ODE solvers.
  steps = 1000 if sampler in ("ddpm", "ddim") else 100
  x = np.asarray(run(process, sampler, steps, x1, key=2, eta=0.5 if sampler == "ddim" else 0.0))
  # Standard errors of the mean and of the std over n draws; 5 of them, plus 1% for the steps.
  se_mean = np.asarray(STD) / np.sqrt(n)
  se_std = np.asarray(STD) / np.sqrt(2 * n)
  np.testing.assert_array_less(np.abs(x.mean(0) - np.asarray(MU)),
                               5 * se_mean + 0.01 * np.asarray(STD))
  np.testing.assert_array_less(np.abs(x.std(0) - np.asarray(STD)),
                               5 * se_std + 0.01 * np.asarray(STD))


def test_ancestral_sampling_is_deterministic_given_the_key():
  process = diffusion.Process("vp", "cosine")
  x1 = jax.random.normal(jax.random.PRNGKey(0), (8, 3))
  a, b = run(process, "ddpm", 20, x1, key=5), run(process, "ddpm", 20, x1, key=5)
  c = run(process, "ddpm", 20, x1, key=6)
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert float(jnp.max(jnp.abs(a - c))) > 1e-2
  # eta = 0 ignores the key; ddpm is ddim at eta 1.
  np.testing.assert_array_equal(np.asarray(run(process, "ddim", 20, x1, key=5)),
                                np.asarray(run(process, "ddim", 20, x1, key=6)))
  np.testing.assert_allclose(np.asarray(run(process, "ddim", 20, x1, key=5, eta=1.0)),
                             np.asarray(a), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("process_name,prediction", [
    ("vp", "eps"), ("vp", "v"), ("vp", "x0"), ("flow", "velocity")])
def test_every_parameterisation_round_trips(process_name, prediction):
  process = diffusion.Process(process_name, "cosine")
  k1, k2 = jax.random.split(jax.random.PRNGKey(0))
  x0 = jax.random.normal(k1, (5, 4, 4, 1))
  eps = jax.random.normal(k2, (5, 4, 4, 1))
  t = jnp.array([0.05, 0.3, 0.5, 0.7, 0.95])
  a, s = process.alpha_sigma(t)
  x = a[:, None, None, None] * x0 + s[:, None, None, None] * eps
  out = diffusion.target(prediction, x0, eps, a, s)
  got_x0, got_eps = diffusion.to_x0_eps(prediction, out, x, a, s)
  np.testing.assert_allclose(np.asarray(got_x0), np.asarray(x0), atol=2e-4)
  np.testing.assert_allclose(np.asarray(got_eps), np.asarray(eps), atol=2e-4)


def test_schedules_run_from_data_to_noise():
  for name, schedule in CASES:
    p = diffusion.Process(name, schedule or "cosine")
    lam = np.asarray(p.logsnr(jnp.linspace(0.01, 0.99, 50)))
    assert np.all(np.diff(lam) < 0), name  # log-SNR falls with t
    a0, s0 = p.alpha_sigma(0.0)
    a1, s1 = p.alpha_sigma(1.0)
    assert float(a0) > 0.999 and float(s0) < 2e-3 and float(s1) > 0.999 and float(a1) < 7e-3
  vp = diffusion.Process("vp", "cosine")
  a, s = vp.alpha_sigma(jnp.linspace(0, 1, 11))
  np.testing.assert_allclose(np.asarray(a**2 + s**2), 1.0, atol=1e-6)
  # The linear schedule's continuous form matches DDPM's discrete alpha-bar at step 500 of 1000.
  betas = np.linspace(1e-4, 0.02, 1000)
  alpha_bar = np.cumprod(1 - betas)[499]
  a, _ = diffusion.Process("vp", "linear").alpha_sigma(0.5)
  assert abs(float(a) ** 2 - alpha_bar) < 0.01 * alpha_bar


@pytest.mark.parametrize("name,schedule", CASES)
def test_t_of_logsnr_inverts_the_schedule(name, schedule):
  p = diffusion.Process(name, schedule or "cosine")
  t = jnp.linspace(0.02, 0.98, 49)
  np.testing.assert_allclose(np.asarray(p.t_of_logsnr(p.logsnr(t))), np.asarray(t), atol=2e-5)


def test_karras_grid_runs_from_noise_to_data_densest_near_the_data():
  for name in ("vp", "flow"):
    p = diffusion.Process(name, "cosine")
    ts = np.asarray(diffusion.times(p, 10, "karras"))
    assert ts[0] == 1.0 and ts[-1] == 0.0 and np.all(np.diff(ts) < 0)
    lam = np.asarray(p.logsnr(ts[1:-1]))
    # sigma/alpha = exp(-lambda/2) falls along Karras' ramp, equal steps in its rho-th root from
    # 80 (the ramp's first point, replaced by t = 1) to 0.002 (its last, before t = 0).
    ramp = np.exp(-lam / (2 * diffusion.RHO))
    step = np.diff(ramp)
    np.testing.assert_allclose(step, step[0], rtol=2e-3)
    np.testing.assert_allclose(ramp[0] - step[0], 80.0 ** (1 / diffusion.RHO), rtol=1e-3)
    np.testing.assert_allclose(ramp[-1], 0.002 ** (1 / diffusion.RHO), rtol=1e-3)


def test_bad_sampler_settings_are_named():
  p = diffusion.Process()
  x = jnp.zeros((1, 3))
  with pytest.raises(ValueError, match="at least 1 step"):
    diffusion.sample(exact_denoiser(p), p, x, jax.random.PRNGKey(0), steps=0)
  with pytest.raises(ValueError, match="valid: ddpm, ddim, euler, heun, dpm\\+\\+2m"):
    diffusion.sample(exact_denoiser(p), p, x, jax.random.PRNGKey(0), sampler="plms")
  with pytest.raises(ValueError, match="diffusion.schedule='sigmoid'"):
    diffusion.Process("vp", "sigmoid")
  assert diffusion.evaluations("heun", 10) == 19 and diffusion.evaluations("ddim", 10) == 10
