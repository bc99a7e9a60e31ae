"""Noise processes and samplers for diffusion and flow matching, in one continuous-time form.

Every process noises data as x_t = alpha(t) x0 + sigma(t) eps, eps ~ N(0, I), t in [0, 1]
(t = 0: data, t = 1: noise):
- `vp` (DDPM's variance-preserving process, alpha^2 + sigma^2 = 1) with a `linear` schedule (the
  continuous limit of DDPM's betas 1e-4 ... 0.02 over 1,000 steps) or a `cosine` one (log-SNR
  -2 log tan(pi t / 2), clipped to [-15, 15]);
- `flow` (rectified flow): alpha = 1 - t, sigma = t, a straight path from data to noise.

A model predicts eps, v (alpha eps - sigma x0), x0 or, for flow, the velocity eps - x0;
`to_x0_eps` turns any of them into the pair (x0, eps) consistent with x_t. The samplers only see
a denoiser x, t -> (x0, eps) (classifier-free guidance is folded into it), so each works with
every process and parameterisation:
- `ddim` (Song et al. 2021) with eta; eta = 1 is DDPM's ancestral sampler (the posterior
  q(x_s | x_t, x0) at the predicted x0), so `ddpm` is ddim with eta 1, at any number of steps;
- `euler` and `heun` on the probability-flow ODE dx/dt = alpha'(t) x0 + sigma'(t) eps (for flow,
  the velocity), Heun's last step Euler as in Karras et al. 2022;
- `dpm++2m`: DPM-Solver++(2M) (Lu et al. 2022), multistep in log-SNR on the x0 prediction,
  first order on its first and last steps.
Each is one `lax.fori_loop` over `steps` uniform times from 1 to 0, batched, deterministic given
its key. Written here because no maintained JAX library offers these samplers over an arbitrary
flax model (diffusers' Flax schedulers were dropped with its Flax support).
"""

import math

import jax
import jax.numpy as jnp

PROCESSES = ("vp", "flow")
SCHEDULES = ("linear", "cosine")
PREDICTIONS = {"vp": ("eps", "v", "x0"), "flow": ("velocity",)}
SAMPLERS = ("ddpm", "ddim", "euler", "heun", "dpm++2m")
LOGSNR_LIMIT = 15.0  # the cosine schedule's log-SNR range [-15, 15]
BETA_MIN, BETA_MAX = 0.1, 20.0  # the linear schedule: DDPM's betas x 1,000 steps
T_MIN = 1e-5  # the linear schedule's smallest t (its log-SNR at 0 is infinite)


# The cosine schedule's log-SNR is -2 log tan(a t + b), with t = 0 and 1 at +15 and -15.
_COSINE_B = math.atan(math.exp(-LOGSNR_LIMIT / 2))
_COSINE_AB = (math.atan(math.exp(LOGSNR_LIMIT / 2)) - _COSINE_B, _COSINE_B)


class Process:
  """alpha(t), sigma(t) and log-SNR lambda(t) of one noise process; t a float array."""

  def __init__(self, process: str = "vp", schedule: str = "cosine"):
    if process not in PROCESSES:
      raise ValueError(f"diffusion.process={process!r}; valid: {', '.join(PROCESSES)}.")
    if process == "vp" and schedule not in SCHEDULES:
      raise ValueError(f"diffusion.schedule={schedule!r}; valid: {', '.join(SCHEDULES)}.")
    self.process, self.schedule = process, schedule

  def logsnr(self, t):
    t = jnp.asarray(t, jnp.float32)
    if self.process == "flow":
      return 2.0 * (jnp.log1p(-t) - jnp.log(t))
    if self.schedule == "linear":
      tau = T_MIN + (1.0 - T_MIN) * t
      return -jnp.log(jnp.expm1(BETA_MIN * tau + 0.5 * (BETA_MAX - BETA_MIN) * tau**2))
    a, b = _COSINE_AB
    return -2.0 * jnp.log(jnp.tan(a * t + b))

  def t_of_logsnr(self, lam):
    """The inverse of logsnr: the time at which the log-SNR is lam."""
    lam = jnp.asarray(lam, jnp.float32)
    if self.process == "flow":
      return jax.nn.sigmoid(-0.5 * lam)
    if self.schedule == "linear":  # solve 0.5 (b1 - b0) tau^2 + b0 tau = log(1 + e^-lam)
      c, db = jax.nn.softplus(-lam), BETA_MAX - BETA_MIN
      tau = (jnp.sqrt(BETA_MIN**2 + 2.0 * db * c) - BETA_MIN) / db
      return (tau - T_MIN) / (1.0 - T_MIN)
    a, b = _COSINE_AB
    return (jnp.arctan(jnp.exp(-0.5 * lam)) - b) / a

  def alpha_sigma(self, t):
    t = jnp.asarray(t, jnp.float32)
    if self.process == "flow":
      return 1.0 - t, t
    lam = self.logsnr(t)
    return jnp.sqrt(jax.nn.sigmoid(lam)), jnp.sqrt(jax.nn.sigmoid(-lam))

  def derivatives(self, t):
    """(alpha'(t), sigma'(t)) for a scalar t."""
    return (jax.grad(lambda u: self.alpha_sigma(u)[0])(jnp.float32(t)),
            jax.grad(lambda u: self.alpha_sigma(u)[1])(jnp.float32(t)))


def expand(a, x):
  return jnp.reshape(a, jnp.shape(a) + (1,) * (x.ndim - jnp.ndim(a)))


def target(prediction: str, x0, eps, alpha, sigma):
  """What a model of this parameterisation is trained to output at x_t = alpha x0 + sigma eps."""
  alpha, sigma = expand(alpha, x0), expand(sigma, x0)
  if prediction == "eps":
    return eps
  if prediction == "x0":
    return x0
  if prediction == "v":
    return alpha * eps - sigma * x0
  if prediction == "velocity":
    return eps - x0
  raise ValueError(f"diffusion.prediction={prediction!r}; valid: eps, v, x0, velocity.")


def to_x0_eps(prediction: str, out, x, alpha, sigma):
  """The (x0, eps) pair a model output implies at x = alpha x0 + sigma eps."""
  alpha, sigma = expand(alpha, x), expand(sigma, x)
  if prediction == "eps":
    return (x - sigma * out) / alpha, out
  if prediction == "x0":
    return out, (x - alpha * out) / sigma
  if prediction == "v":  # alpha^2 + sigma^2 = 1
    return alpha * x - sigma * out, sigma * x + alpha * out
  if prediction == "velocity":  # x = alpha x0 + sigma (out + x0)
    x0 = (x - sigma * out) / (alpha + sigma)
    return x0, out + x0
  raise ValueError(f"diffusion.prediction={prediction!r}; valid: eps, v, x0, velocity.")


SPACINGS = ("uniform", "karras")
# Uniform in t unless asked otherwise: on Gaussian data (tests/test_samplers_diffusion.py) the
# Karras grid did not help any sampler at 10 steps.
DEFAULT_SPACING = {s: "uniform" for s in SAMPLERS}
RHO = 7.0
KARRAS_LOGSNR = (-2 * math.log(80.0), -2 * math.log(0.002))  # their sigma_max 80, sigma_min 0.002


def times(process: Process, steps: int, spacing: str = "uniform"):
  """steps + 1 times from 1 (noise) to 0 (data). `karras` spaces the noise-to-signal ratio
  sigma/alpha = exp(-lambda/2) as Karras et al. 2022 space sigma, between its values at t = 1
  and t = 0, limited to their range (sigma/alpha in [0.002, 80]), t found by bisection."""
  if spacing not in SPACINGS:
    raise ValueError(f"spacing={spacing!r}; valid: {', '.join(SPACINGS)}.")
  if spacing == "uniform" or steps == 1:
    return jnp.linspace(1.0, 0.0, steps + 1)
  lam_lo = jnp.maximum(process.logsnr(1.0), KARRAS_LOGSNR[0])
  lam_hi = jnp.minimum(process.logsnr(0.0), KARRAS_LOGSNR[1])
  r_max, r_min = jnp.exp(-lam_lo / (2 * RHO)), jnp.exp(-lam_hi / (2 * RHO))
  ramp = jnp.linspace(0.0, 1.0, steps)
  lam = -2.0 * RHO * jnp.log(r_max + ramp * (r_min - r_max))  # steps values, falling t
  lo, hi = jnp.zeros_like(lam), jnp.ones_like(lam)
  for _ in range(40):  # lambda falls with t
    mid = 0.5 * (lo + hi)
    above = process.logsnr(mid) > lam
    lo, hi = jnp.where(above, mid, lo), jnp.where(above, hi, mid)
  t = 0.5 * (lo + hi)
  return jnp.concatenate([jnp.ones((1,)), t[1:], jnp.zeros((1,))])


def sample(denoise, process: Process, x, rng, *, sampler: str = "dpm++2m", steps: int = 50,
           eta: float = 0.0, spacing: str = ""):
  """x_0 from x (noise at t = 1) in `steps` steps; denoise(x, t) -> (x0, eps), t a scalar.
  spacing: the time grid ("": the sampler's own, DEFAULT_SPACING)."""
  if sampler not in SAMPLERS:
    raise ValueError(f"sampler={sampler!r}; valid: {', '.join(SAMPLERS)}.")
  if steps < 1:
    raise ValueError(f"steps={steps}: a sampler needs at least 1 step.")
  ts = times(process, steps, spacing or DEFAULT_SPACING[sampler])
  last = steps - 1

  def ddim_step(i, x, key, eta):
    t, s = ts[i], ts[i + 1]
    x0, eps = denoise(x, t)
    a_t, s_t = process.alpha_sigma(t)
    a_s, s_s = process.alpha_sigma(s)
    # The posterior's variance given x0 (eta = 1), scaled by eta^2; sigma_{t|s}^2 is the
    # variance of x_t given x_s.
    var_ts = jnp.maximum(s_t**2 - (a_t / a_s) ** 2 * s_s**2, 0.0)
    c2 = eta**2 * var_ts * s_s**2 / s_t**2
    noise = jax.random.normal(key, x.shape, x.dtype)
    return a_s * x0 + jnp.sqrt(jnp.maximum(s_s**2 - c2, 0.0)) * eps + jnp.sqrt(c2) * noise

  def slope(x, t):
    x0, eps = denoise(x, t)
    da, ds = process.derivatives(t)
    return da * x0 + ds * eps

  def body(i, carry):
    x, x0_prev, h_prev = carry
    t, s = ts[i], ts[i + 1]
    if sampler in ("ddpm", "ddim"):
      e = 1.0 if sampler == "ddpm" else eta
      return ddim_step(i, x, jax.random.fold_in(rng, i), e), x0_prev, h_prev
    if sampler == "euler":
      return x + (s - t) * slope(x, t), x0_prev, h_prev
    if sampler == "heun":
      k1 = slope(x, t)
      x_e = x + (s - t) * k1
      # The corrector would evaluate the model at t = 0; the last step stays Euler.
      x_h = jax.lax.cond(i < last, lambda: x + (s - t) * 0.5 * (k1 + slope(x_e, s)),
                         lambda: x_e)
      return x_h, x0_prev, h_prev
    # DPM-Solver++(2M), in ratios so that alpha_t = 0 (flow at t = 1) and sigma_s = 0 (the end)
    # need no infinite log-SNR: e^{-h} = (sigma_s alpha_t) / (alpha_s sigma_t).
    x0, _ = denoise(x, t)
    a_t, s_t = process.alpha_sigma(t)
    a_s, s_s = process.alpha_sigma(s)
    lam_t = jnp.log(a_t) - jnp.log(s_t)
    lam_s = jnp.log(a_s) - jnp.log(s_s)
    h = lam_s - lam_t
    r = h_prev / h
    second = (i > 0) & (i < last) & jnp.isfinite(r) & (r > 0)
    d = jnp.where(second, (1.0 + 0.5 / r) * x0 - (0.5 / r) * x0_prev, x0)
    exp_neg_h = jnp.where(s_s > 0, s_s * a_t / (a_s * s_t), 0.0)
    x_new = (s_s / s_t) * x + a_s * (1.0 - exp_neg_h) * d
    return x_new, x0, h

  x0_init = jnp.zeros_like(x)
  x, _, _ = jax.lax.fori_loop(0, steps, body, (x, x0_init, jnp.float32(0.0)))
  return x


def evaluations(sampler: str, steps: int) -> int:
  """Model evaluations per sample (Heun's corrector doubles all but the last step)."""
  return 2 * steps - 1 if sampler == "heun" else steps
