"""Pure loss functions: keyword inputs, per-example values unless the name says mean."""

import jax
import jax.numpy as jnp
import optax


def softmax_cross_entropy(*, logits, labels):
  """Per-example cross-entropy with integer labels; computed in float32 for stability."""
  return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)


def z_loss(*, logits):
  """Per-position log(Z)^2 of the softmax normaliser (PaLM's auxiliary loss)."""
  return jnp.square(jax.nn.logsumexp(logits.astype(jnp.float32), axis=-1))


def correct(*, logits, labels):
  """Per-example 1.0 where the arg-max class equals the label."""
  return (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)


def weighted_mean(values, weights=None):
  """Mean over examples; `weights` (e.g. an eval padding mask) zero out padded rows."""
  if weights is None:
    return jnp.mean(values)
  weights = weights.astype(values.dtype)
  return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def l2_norm(tree):
  return optax.tree.norm(jax.tree.map(lambda x: x.astype(jnp.float32), tree))


# Adversarial losses (per example; D sees logits or critic scores, G its fakes' scores).

def gan_d_minimax(*, real, fake):
  """Discriminator of the original GAN: -log D(x) - log(1 - D(G(z))), D = sigmoid(logit)."""
  return jax.nn.softplus(-real) + jax.nn.softplus(fake)


def gan_g_minimax(*, fake):
  """Generator of the original minimax game: log(1 - D(G(z))) (saturates early in training)."""
  return -jax.nn.softplus(fake)


def gan_g_nonsaturating(*, fake):
  """The non-saturating generator loss: -log D(G(z))."""
  return jax.nn.softplus(-fake)


def wasserstein_d(*, real, fake):
  """WGAN critic: maximise E[f(x)] - E[f(G(z))], i.e. minimise fake - real."""
  return fake - real


def wasserstein_g(*, fake):
  return -fake


def hinge_d(*, real, fake):
  return jax.nn.relu(1.0 - real) + jax.nn.relu(1.0 + fake)


def hinge_g(*, fake):
  return -fake


def _input_grad_norms(critic, x):
  """Per-example L2 norm of d critic(x_i) / d x_i (the critic must treat examples
  independently, e.g. no batch norm, as WGAN-GP requires)."""
  grads = jax.grad(lambda x: jnp.sum(critic(x)))(x)
  return jnp.sqrt(jnp.sum(jnp.square(grads.reshape(x.shape[0], -1)), axis=-1) + 1e-12)


def gradient_penalty(*, critic, real, fake, alpha):
  """WGAN-GP: (||grad critic(x_hat)|| - 1)^2 at x_hat = alpha real + (1 - alpha) fake, with
  alpha of shape [batch] drawn uniformly in [0, 1] by the caller."""
  a = alpha.reshape((-1,) + (1,) * (real.ndim - 1))
  x_hat = a * real + (1.0 - a) * fake
  return jnp.square(_input_grad_norms(critic, x_hat) - 1.0)


def r1_penalty(*, critic, real):
  """R1: ||grad critic(x)||^2 on real data (the caller weights it by gamma / 2)."""
  return jnp.square(_input_grad_norms(critic, real))


def bernoulli_nll(*, logits, targets):
  """-log p(targets | logits) per example, summed over every non-batch axis (nats)."""
  ll = targets * jax.nn.log_sigmoid(logits) + (1.0 - targets) * jax.nn.log_sigmoid(-logits)
  return -jnp.sum(ll.reshape(ll.shape[0], -1), axis=-1)


def gaussian_kl(*, mean, log_variance):
  """KL(N(mean, exp(log_variance)) || N(0, I)) per example, summed over the last axis."""
  return 0.5 * jnp.sum(jnp.square(mean) + jnp.exp(log_variance) - 1.0 - log_variance, axis=-1)


def gaussian_log_density(x, *, mean=0.0, log_variance=0.0):
  """log N(x; mean, exp(log_variance)), summed over the last axis."""
  return -0.5 * jnp.sum(jnp.log(2.0 * jnp.pi) + log_variance
                        + jnp.square(x - mean) * jnp.exp(-log_variance), axis=-1)
