"""DCGAN generator/discriminator shapes, variants and config errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.core import meta

from aigc_jax.errors import ConfigError
from aigc_jax.models import dcgan


def _init(model, batch=4, labels=None):
  z = jnp.zeros((batch, model.latent_dim))
  x = jnp.zeros((batch, model.image_size, model.image_size, model.channels))
  return meta.unbox(model.init(jax.random.PRNGKey(0), z, x, labels, train=False))


def test_mnist_shapes_and_the_two_players():
  model = dcgan.Model()
  v = _init(model)
  assert set(v["params"]) == {"generator", "discriminator"}
  assert v["params"]["generator"]["project"]["Dense_0"]["kernel"].shape == (100, 7 * 7 * 256)
  z = jax.random.normal(jax.random.PRNGKey(1), (4, 100))
  images, mut = model.apply(v, z, train=True, method=model.generate, mutable=["batch_stats"])
  assert images.shape == (4, 28, 28, 1) and float(jnp.abs(images).max()) <= 1.0
  logits = model.apply(v, images, method=model.discriminate)
  assert logits.shape == (4,)
  # Training mode updates the generator's batch statistics.
  before = v["batch_stats"]["generator"]["bn0"]["mean"]
  assert not np.allclose(mut["batch_stats"]["generator"]["bn0"]["mean"], before)


def test_critic_has_no_batch_norm_and_colour_sizes_work():
  model = dcgan.Model(image_size=32, channels=3, width=16, critic=True)
  v = _init(model)
  assert "discriminator" not in v.get("batch_stats", {})
  z = jnp.ones((2, 100))
  assert model.apply(v, z, method=model.generate).shape == (2, 32, 32, 3)


def test_class_conditional_generator_uses_the_label():
  model = dcgan.Model(num_classes=10, width=16)
  labels = jnp.asarray([3, 7])
  v = _init(model, batch=2, labels=labels)
  z = jnp.ones((2, 100))
  a = model.apply(v, z, jnp.asarray([3, 3]), method=model.generate)
  b = model.apply(v, z, jnp.asarray([3, 7]), method=model.generate)
  np.testing.assert_allclose(a[0], b[0], atol=1e-6)
  assert not np.allclose(a[1], b[1])
  assert "label" in v["params"]["discriminator"]  # projection discriminator


@pytest.mark.parametrize("kw,match", [({"image_size": 30}, "multiple of 4"),
                                      ({"channels": 2}, "1 \\(grey\\) or 3"),
                                      ({"latent_dim": 0}, "latent_dim must be positive")])
def test_bad_model_config_is_a_clear_error(kw, match):
  with pytest.raises(ConfigError, match=match):
    dcgan.check(**{"image_size": 28, "channels": 1, "latent_dim": 100, "num_classes": 0, **kw})
