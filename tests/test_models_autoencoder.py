"""Autoencoder / VAE models and the encoder classifier that takes over their encoder's weights."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax.core import meta

from aigc_jax import models
from aigc_jax.errors import ConfigError
from aigc_jax.models import autoencoder, encoder_classifier

CONV = {"kind": "conv", "hidden": (8, 16)}
ENCODERS = [{}, {"variational": True}, CONV, {**CONV, "variational": True}]
X = jax.random.uniform(jax.random.PRNGKey(0), (2, 28, 28))


def _shapes(tree):
  return jax.tree.map(jnp.shape, meta.unbox(tree))


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(meta.unbox(tree)))


@pytest.mark.parametrize("fields", ENCODERS)
@pytest.mark.parametrize("channel_axis", [False, True])
def test_shapes(fields, channel_axis):
  model = autoencoder.Model(latent_dim=5, **fields)
  x = X[..., None] if channel_axis else X
  v = model.init(jax.random.PRNGKey(1), x)
  assert set(v["params"]) == {"encoder", "decoder"}
  assert model.apply(v, x).shape == (2, 28, 28, 1)
  code = model.apply(v, x, method=model.encode)
  if model.variational:
    mean, log_var = code
    assert mean.shape == log_var.shape == (2, 5) and not np.allclose(mean, log_var)
    np.testing.assert_allclose(model.apply(v, x), model.apply(v, mean, method=model.decode),
                               atol=1e-5)
  else:
    assert code.shape == (2, 5)
  z = jax.random.normal(jax.random.PRNGKey(2), (3, 5))
  assert model.apply(v, z, method=model.decode).shape == (3, 28, 28, 1)


def test_conv_colour_images_and_three_levels():
  model = autoencoder.Model(kind="conv", hidden=(4, 8, 8), image_shape=(32, 16, 3))
  x = jnp.ones((2, 32, 16, 3))
  v = model.init(jax.random.PRNGKey(0), x)
  assert model.apply(v, x).shape == (2, 32, 16, 3)
  dec = _shapes(v)["params"]["decoder"]
  assert dec["project"]["Dense_0"]["kernel"] == (20, 4 * 2 * 8)
  assert [dec[f"up_{i}"]["conv"]["kernel"][-2:] for i in range(3)] == [(8, 8), (8, 4), (4, 4)]


def test_spatial_code_is_a_bounded_feature_map_the_decoder_reads():
  model = autoencoder.Model(kind="spatial", hidden=(4, 8), latent_dim=3, image_shape=(56, 56, 1))
  x = jax.random.uniform(jax.random.PRNGKey(0), (2, 56, 56, 1), minval=-1.0, maxval=1.0)
  v = model.init(jax.random.PRNGKey(1), x)
  # Large inputs drive the code into tanh's tails: bounded, as a diffusion model's data is.
  code = model.apply(v, 100.0 * x, method=model.encode)
  assert code.shape == (2, 14, 14, 3)
  assert float(jnp.abs(code).max()) <= 1.0 and float(jnp.abs(code).max()) > 0.99
  np.testing.assert_allclose(model.apply(v, x), model.apply(
      v, model.apply(v, x, method=model.encode), method=model.decode), atol=1e-6)
  # Codes are local: a change in one corner of the image leaves the far corner's code alone.
  y = x.at[:, :8, :8].set(1.0)
  far = lambda img: model.apply(v, img, method=model.encode)[:, 8:, 8:]
  np.testing.assert_array_equal(far(x), far(y))
  assert not np.allclose(model.apply(v, x, method=model.encode)[:, :2, :2],
                         model.apply(v, y, method=model.encode)[:, :2, :2])
  dec = _shapes(v)["params"]["decoder"]
  assert dec["project"]["Conv_0"]["kernel"] == (3, 3, 3, 8)


@pytest.mark.parametrize("variational,code_width", [(False, 20), (True, 40)])
def test_flax_reference_vae_is_784_500_20(variational, code_width):
  model = autoencoder.Model(kind="mlp", hidden=(500,), latent_dim=20, variational=variational)
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), X)["params"]
  assert _count(shapes["encoder"]) == 784 * 500 + 500 + 500 * code_width + code_width
  assert _count(shapes["decoder"]) == 20 * 500 + 500 + 500 * 784 + 784


@pytest.mark.parametrize("fields", ENCODERS)
def test_encoder_transfers_into_the_classifier(fields):
  ae = autoencoder.Model(latent_dim=6, **fields)
  clf = encoder_classifier.Model(encoder={"latent_dim": 6, **fields}, head_hidden=(7,))
  v_ae = ae.init(jax.random.PRNGKey(0), X)
  v_clf = clf.init(jax.random.PRNGKey(1), X)
  assert set(v_clf["params"]) == {"encoder", "head"}
  assert _shapes(v_ae["params"]["encoder"]) == _shapes(v_clf["params"]["encoder"])
  # With the autoencoder's encoder copied in, the classifier's features are its code (or mean).
  params = {**meta.unbox(v_clf["params"]), "encoder": meta.unbox(v_ae["params"]["encoder"])}
  feats = clf.apply({"params": params}, X, method=clf.features)
  code = ae.apply(v_ae, X, method=ae.encode)
  np.testing.assert_allclose(feats, code[0] if ae.variational else code, atol=1e-6)
  logits, state = clf.apply({"params": params}, X, mutable=["intermediates"])
  assert logits.shape == (2, 10)
  np.testing.assert_allclose(state["intermediates"]["features"][0], feats, atol=1e-6)


def test_classifier_from_config_trains_with_dropout():
  model = models.get_model(ml_collections.ConfigDict(
      {"name": "encoder_classifier", "encoder": {"kind": "mlp", "hidden": (500,), "latent_dim": 20},
       "dropout": 0.5, "head_hidden": [16]}))
  assert isinstance(model.encoder["hidden"], tuple) and hash(model) is not None
  rng = jax.random.PRNGKey(0)
  v = model.init({"params": rng, "dropout": rng}, X, train=False)
  assert _shapes(v["params"]["encoder"]) == _shapes(
      autoencoder.Model().init(rng, X)["params"]["encoder"])
  a = model.apply(v, X, train=True, rngs={"dropout": jax.random.PRNGKey(1)})
  b = model.apply(v, X, train=True, rngs={"dropout": jax.random.PRNGKey(2)})
  assert a.shape == (2, 10) and not np.allclose(a, b)
  np.testing.assert_allclose(model.apply(v, X), model.apply(v, X, train=False))
  ae = models.get_model(ml_collections.ConfigDict(
      {"name": "autoencoder", "kind": "conv", "hidden": [8, 16], "variational": True}))
  assert ae.hidden == (8, 16) and hash(ae) is not None


@pytest.mark.parametrize("fields", [{}, CONV])
def test_every_weight_has_logical_axis_names(fields):
  boxed = [autoencoder.Model(variational=True, **fields).init(jax.random.PRNGKey(0), X),
           encoder_classifier.Model(encoder=fields, head_hidden=(4,)).init(
               jax.random.PRNGKey(0), X)]
  for variables in boxed:
    leaves = jax.tree_util.tree_leaves_with_path(
        variables["params"], is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
    kernels = [leaf for path, leaf in leaves if path[-1].key == "kernel"]
    assert len(kernels) >= 3
    for _, leaf in leaves:
      assert isinstance(leaf, nn.LogicallyPartitioned)
      assert len(leaf.names) == leaf.value.ndim


@pytest.mark.parametrize("build,match", [
    (lambda: autoencoder.Model(kind="resnet"), "kind='resnet'; valid"),
    (lambda: autoencoder.Model(kind="conv", hidden=(8, 16, 32)), "divisible by 8"),
    (lambda: autoencoder.Model(kind="conv", hidden=()), "at least one channel"),
    (lambda: autoencoder.Model(latent_dim=0), "latent_dim=0"),
    (lambda: autoencoder.Model(kind="spatial", hidden=()), "kind='spatial' needs at least one"),
    (lambda: autoencoder.Model(kind="spatial", hidden=(4,), variational=True).init(
        jax.random.PRNGKey(0), X), "codes are deterministic"),
    (lambda: autoencoder.Model(weight_init="xavier"), "weight_init='xavier'"),
    (lambda: autoencoder.Encoder(kind="transformer"), "kind='transformer'"),
    (lambda: autoencoder.Decoder(kind="conv", hidden=(4, 4), image_shape=(30, 28, 1)),
     "divisible by 4"),
    (lambda: encoder_classifier.Model(encoder={"latent_dim": 0}), "model.encoder.latent_dim=0"),
    (lambda: encoder_classifier.Model(encoder={"width": 3}), "no field\\(s\\) \\['width'\\]"),
    (lambda: models.get_model(ml_collections.ConfigDict(
        {"name": "autoencoder", "kind": "conv", "image_shape": (28, 28)})), "needs \\(H, W, C\\)"),
])
def test_bad_config_is_a_clear_error(build, match):
  with pytest.raises(ConfigError, match=match):
    build()


def test_input_that_does_not_match_image_shape_is_a_clear_error():
  model = autoencoder.Model(image_shape=(32, 32, 1))
  with pytest.raises(ConfigError, match="does not match model.image_shape"):
    model.init(jax.random.PRNGKey(0), X)
