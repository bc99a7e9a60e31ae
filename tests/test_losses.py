"""Losses: adversarial losses against hand-computed values, penalties against an autodiff
reference, cross-entropy and the padding-aware mean by hand."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aigc_jax import losses


def test_adversarial_losses_by_hand():
  real, fake = jnp.asarray([2.0, -1.0]), jnp.asarray([0.5, -3.0])
  sig = lambda t: 1 / (1 + math.exp(-t))  # noqa: E731
  np.testing.assert_allclose(
      losses.gan_d_minimax(real=real, fake=fake),
      [-math.log(sig(2.0)) - math.log(1 - sig(0.5)), -math.log(sig(-1.0)) - math.log(1 - sig(-3))],
      rtol=1e-6)
  np.testing.assert_allclose(losses.gan_g_minimax(fake=fake),
                             [math.log(1 - sig(0.5)), math.log(1 - sig(-3.0))], rtol=1e-6)
  np.testing.assert_allclose(losses.gan_g_nonsaturating(fake=fake),
                             [-math.log(sig(0.5)), -math.log(sig(-3.0))], rtol=1e-6)
  np.testing.assert_allclose(losses.wasserstein_d(real=real, fake=fake), [-1.5, -2.0])
  np.testing.assert_allclose(losses.wasserstein_g(fake=fake), [-0.5, 3.0])
  np.testing.assert_allclose(losses.hinge_d(real=real, fake=fake), [0 + 1.5, 2.0 + 0])
  np.testing.assert_allclose(losses.hinge_g(fake=fake), [-0.5, 3.0])


def test_saturation_is_why_the_nonsaturating_loss_exists():
  """When D confidently rejects fakes, the minimax generator gradient vanishes; the
  non-saturating one does not."""
  fake = jnp.asarray(-8.0)
  g_minimax = jax.grad(lambda f: losses.gan_g_minimax(fake=f))(fake)
  g_nonsat = jax.grad(lambda f: losses.gan_g_nonsaturating(fake=f))(fake)
  assert abs(g_minimax) < 1e-3 < abs(g_nonsat)


def _quadratic_critic(w, b):
  return lambda x: jnp.sum(jnp.tanh(x.reshape(x.shape[0], -1) @ w) ** 2, axis=-1) + b


def test_gradient_penalty_matches_autodiff_reference():
  k = jax.random.split(jax.random.PRNGKey(0), 4)
  real = jax.random.normal(k[0], (5, 4, 4, 1))
  fake = jax.random.normal(k[1], (5, 4, 4, 1))
  alpha = jax.random.uniform(k[2], (5,))
  w = jax.random.normal(k[3], (16, 3))
  critic = _quadratic_critic(w, 0.3)
  got = losses.gradient_penalty(critic=critic, real=real, fake=fake, alpha=alpha)
  want = []
  for i in range(5):  # one example at a time, the textbook definition
    x_hat = alpha[i] * real[i:i + 1] + (1 - alpha[i]) * fake[i:i + 1]
    g = jax.grad(lambda x: critic(x)[0])(x_hat)
    want.append((np.linalg.norm(np.asarray(g).ravel()) - 1.0) ** 2)
  np.testing.assert_allclose(got, want, rtol=1e-5)
  # A linear critic f(x) = w.x has gradient w everywhere: the penalty is (||w|| - 1)^2.
  v = jnp.arange(16.0) / 20
  lin = lambda x: x.reshape(x.shape[0], -1) @ v  # noqa: E731
  gp = losses.gradient_penalty(critic=lin, real=real, fake=fake, alpha=alpha)
  np.testing.assert_allclose(gp, (np.linalg.norm(v) - 1) ** 2 * np.ones(5), rtol=1e-5)
  np.testing.assert_allclose(losses.r1_penalty(critic=lin, real=real),
                             np.sum(np.square(v)) * np.ones(5), rtol=1e-5)


def test_cross_entropy_matches_hand_computation():
  logits = jnp.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
  labels = jnp.array([0, 2])
  expected = [-np.log(np.exp(2) / (np.exp(2) + 1 + np.exp(-1))), np.log(3)]
  np.testing.assert_allclose(losses.softmax_cross_entropy(logits=logits, labels=labels), expected,
                             rtol=1e-6)
  np.testing.assert_array_equal(losses.correct(logits=logits, labels=labels), [1.0, 0.0])


def test_weighted_mean_ignores_padding():
  values = jnp.array([1.0, 3.0, 100.0])
  assert float(losses.weighted_mean(values, jnp.array([1, 1, 0]))) == 2.0
  assert float(losses.weighted_mean(values)) == pytest.approx(104 / 3)
