"""The phase-decomposed transposed convolution equals flax's, values and gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aigc_jax.layers.conv import ConvTranspose


@pytest.mark.parametrize("k", [3, 4, 5])
@pytest.mark.parametrize("s", [1, 2, 3])
def test_phases_equal_flax_conv_transpose(k, s):
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 7, 6, 3))
  ref = nn.ConvTranspose(4, (k, k), strides=(s, s), padding="SAME", use_bias=False)
  params = ref.init(jax.random.PRNGKey(1), x)
  ours = ConvTranspose(4, (k, k), (s, s), impl="phases")
  assert jax.tree.map(jnp.shape, ours.init(jax.random.PRNGKey(1), x)) == \
      jax.tree.map(jnp.shape, params)
  a, b = ref.apply(params, x), ours.apply(params, x)
  assert a.shape == (2, 7 * s, 6 * s, 4)
  np.testing.assert_allclose(b, a, atol=1e-5)
  loss = lambda m: jax.grad(lambda p, x: jnp.sum(jnp.sin(m.apply(p, x))), argnums=(0, 1))
  ga, gb = loss(ref)(params, x), loss(ours)(params, x)
  jax.tree.map(lambda u, v: np.testing.assert_allclose(v, u, atol=1e-4), ga, gb)


def test_xla_impl_and_bad_impl():
  x = jnp.ones((1, 4, 4, 2))
  m = ConvTranspose(3, (5, 5), (2, 2), impl="xla")
  p = m.init(jax.random.PRNGKey(0), x)
  np.testing.assert_allclose(m.apply(p, x), ConvTranspose(3, (5, 5), (2, 2), impl="phases")
                             .apply(p, x), atol=1e-5)
  with pytest.raises(ValueError, match="Unknown ConvTranspose impl"):
    ConvTranspose(3, (5, 5), (2, 2), impl="fast").init(jax.random.PRNGKey(0), x)
