"""Images from a latent-variable model: z ~ N(0, I), decoded (a GAN's generator, a VAE's decoder)."""

import jax


def from_prior(decode, rng, num: int, latent_dim: int, *args):
  """decode(z, *args) for `num` draws z ~ N(0, I) of size `latent_dim`."""
  return decode(jax.random.normal(rng, (num, latent_dim)), *args)
