"""The modern GPT recipe's switches (models/gpt.py, optim.py): each does what it says."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from aigc_jax import optim, step as step_lib
from aigc_jax.errors import ConfigError
from aigc_jax.layers import transformer
from aigc_jax.models import gpt
from aigc_jax import config as config_lib

_KW = dict(vocab_size=65, block_size=16, num_layers=4, num_heads=2, width=32, use_bias=False,
           position="rotary")
_X = jnp.asarray(np.random.default_rng(0).integers(0, 65, (2, 16)))


def _init(**kw):
  m = gpt.Model(**{**_KW, **kw})
  return m, step_lib.unbox(m.init(jax.random.PRNGKey(0), _X)["params"])


def _set(params, path, fn):
  flat = flax.traverse_util.flatten_dict(params, sep="/")
  flat[path] = fn(flat[path])
  return flax.traverse_util.unflatten_dict(flat, sep="/")


def _drop(params, suffixes):
  flat = flax.traverse_util.flatten_dict(params, sep="/")
  return flax.traverse_util.unflatten_dict(
      {k: v for k, v in flat.items() if not k.endswith(suffixes)}, sep="/")


def test_rms_norm_is_parameter_free():
  _, p = _init(norm="rms")
  names = set(flax.traverse_util.flatten_dict(p, sep="/"))
  assert not any("LayerNorm" in n or "ln_f" in n or "RMSNorm" in n for n in names), names


def test_zero_init_untied_head_starts_at_uniform_prediction():
  m, p = _init(zero_init=True, tie_embeddings=False)
  assert float(jnp.abs(p["block0"]["out"]["kernel"]).max()) == 0.0
  np.testing.assert_array_equal(m.apply({"params": p}, _X), 0.0)  # loss starts at log(vocab)


def test_logit_softcap_bounds_the_logits_and_is_tanh_of_the_plain_ones():
  capped, p = _init(logit_softcap=0.5)
  plain = gpt.Model(**_KW)
  a, b = capped.apply({"params": p}, _X), plain.apply({"params": p}, _X)
  assert float(jnp.abs(a).max()) < 0.5
  np.testing.assert_allclose(a, 0.5 * np.tanh(np.asarray(b) / 0.5), rtol=1e-5, atol=1e-6)


def test_qk_norm_makes_attention_blind_to_the_scale_of_queries_and_keys():
  m, p = _init(qk_norm=True)
  scaled = _set(p, "block1/qkv/kernel", lambda k: k.at[:, :2].multiply(10.0))  # q and k only
  np.testing.assert_allclose(m.apply({"params": p}, _X), m.apply({"params": scaled}, _X),
                             rtol=1e-4, atol=1e-5)
  plain = gpt.Model(**_KW)
  assert not np.allclose(plain.apply({"params": p}, _X), plain.apply({"params": scaled}, _X),
                         atol=1e-3)


def test_relu_squared_mlp_is_homogeneous_of_degree_two():
  block = transformer.Block(2, 2, 0.0, None, "xla", False, False, mlp="relu2", zero_init=True)
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 32))
  p = step_lib.unbox(block.init(jax.random.PRNGKey(0), x, False)["params"])  # zero out-proj.
  p["proj"]["kernel"] = jax.random.normal(jax.random.PRNGKey(2), p["proj"]["kernel"].shape)
  p2 = {**p, "fc": {"kernel": 2.0 * p["fc"]["kernel"]}}
  mlp1 = block.apply({"params": p}, x, False) - x
  mlp2 = block.apply({"params": p2}, x, False) - x
  np.testing.assert_allclose(mlp2, 4.0 * mlp1, rtol=1e-4, atol=1e-4)
  assert float(jnp.abs(mlp1).max()) > 0


@pytest.mark.parametrize("option,neutral", [
    ("value_residual", lambda p: jax.tree.map(lambda a: a, p)),  # handled below
    ("x0_skip", None), ("unet_skips", None),
])
def test_skips_start_neutral_or_reduce_to_the_plain_model(option, neutral):
  del neutral
  m, p = _init(**{option: True})
  plain = gpt.Model(**_KW)
  if option == "value_residual":  # a mixing weight of 0 keeps each block's own values
    p = jax.tree.map(lambda a: a, p)
    flat = flax.traverse_util.flatten_dict(p, sep="/")
    assert sorted(k for k in flat if "v_lambda" in k) == [f"block{i}/v_lambda" for i in (1, 2, 3)]
    p = flax.traverse_util.unflatten_dict(
        {k: (jnp.zeros_like(v) if "v_lambda" in k else v) for k, v in flat.items()}, sep="/")
  if option == "unet_skips":  # skip weights of 0 add nothing
    assert p["skip_weights"].shape == (2,)
    p = {**p, "skip_weights": jnp.zeros(2)}
  plain_p = _drop(p, ("v_lambda", "x0_lambdas", "skip_weights"))
  np.testing.assert_allclose(m.apply({"params": p}, _X), plain.apply({"params": plain_p}, _X),
                             rtol=1e-5, atol=1e-5)
  if option != "x0_skip":  # and the learned weights do change it
    changed = jax.tree.map(lambda a: a + 0.5 if a.ndim <= 1 and a.size <= 2 else a, p)
    assert not np.allclose(m.apply({"params": changed}, _X),
                           plain.apply({"params": plain_p}, _X), atol=1e-4)


def test_every_switch_together_decodes_like_one_pass():
  m, p = _init(norm="rms", mlp="relu2", qk_norm=True, tie_embeddings=False, logit_softcap=15.0,
               value_residual=True, x0_skip=True, unet_skips=True)
  p = jax.tree.map(lambda a: a + 0.1 if a.ndim <= 1 else a, p)  # skips active
  full = m.apply({"params": p}, _X)
  cache = m.init(jax.random.PRNGKey(0), _X, decode=True)["cache"]
  logits, mut = m.apply({"params": p, "cache": cache}, _X[:, :10], decode=True, mutable=["cache"])
  steps = [logits]
  for t in range(10, 16):
    out, mut = m.apply({"params": p, **mut}, _X[:, t:t + 1], decode=True, mutable=["cache"])
    steps.append(out)
  np.testing.assert_allclose(jnp.concatenate(steps, 1), full, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kw,match", [
    (dict(norm="batch"), "model.norm='batch'"), (dict(mlp="swiglu"), "model.mlp='swiglu'"),
    (dict(logit_softcap=-1.0), "logit_softcap=-1.0 must be > 0"),
    (dict(scan_layers=True, unet_skips=True), "scan_layers=False"),
])
def test_bad_recipe_options_are_refused_before_compiling(kw, match):
  with pytest.raises(ConfigError, match=match):
    gpt.Model(**{**_KW, **kw})


def _optim(**kw):
  c = config_lib.get_config("lm").optim
  c.update(name="muon", lr=0.02, adam_lr=3e-3, **kw)
  return c


def _skewed_grads(params, seed=3):
  """Random gradients whose matrices have singular values spread over two decades."""
  def one(path, a):
    key = jax.random.fold_in(jax.random.PRNGKey(seed), hash(jax.tree_util.keystr(path)) % 2**31)
    g = jax.random.normal(key, a.shape)
    if a.ndim >= 2:
      m = g.reshape(-1, a.shape[-1]) if a.shape[0] != 32 else g.reshape(32, -1)
      u, _, vt = jnp.linalg.svd(m, full_matrices=False)
      g = ((u * jnp.logspace(0, -2, u.shape[1])[None, :]) @ vt).reshape(a.shape)
    return g
  return jax.tree_util.tree_map_with_path(one, params)


def test_muon_orthogonalises_hidden_matrices_and_adam_takes_the_rest():
  _, p = _init(tie_embeddings=False)
  tx = optim.make_optimizer(_optim(), 100)
  g = _skewed_grads(p)
  u, _ = tx.update(g, tx.init(p), p)
  fc = np.asarray(u["block1"]["fc"]["kernel"])  # [32, 128]: 32 singular values
  s = np.linalg.svd(fc, compute_uv=False)
  assert s.min() > 0.3 * s.max()  # Newton-Schulz flattens the spectrum (near, not exactly, 1)
  qkv = np.asarray(u["block1"]["qkv"]["kernel"])  # q, k, v orthogonalised one by one
  raw = np.asarray(g["block1"]["qkv"]["kernel"])
  for i in range(3):  # five Newton-Schulz steps lift the smallest directions by ~10x or more
    s = np.linalg.svd(qkv[:, i].reshape(32, -1), compute_uv=False)
    r = np.linalg.svd(raw[:, i].reshape(32, -1), compute_uv=False)
    assert s.min() / s.max() > min(0.3, 10 * r.min() / r.max())
  g_fc = np.linalg.svd(np.asarray(g["block1"]["fc"]["kernel"]), compute_uv=False)
  assert g_fc.min() < 0.1 * g_fc.max()  # the raw gradient's spectrum was not flat
  # Adam's first step moves each coordinate by about its learning rate.
  wte = np.abs(np.asarray(u["wte"]["embedding"]))
  assert 1e-3 < np.median(wte[wte > 0]) < 1e-2


def test_muon_that_selects_nothing_is_refused():
  _, p = _init()
  with pytest.raises(ConfigError, match="selects no 2-D parameter.*block0/qkv/kernel"):
    optim.check_muon(_optim(muon_params="nothing_matches"), p)
  optim.check_muon(_optim(), p)  # the default selects the blocks' kernels


def test_warmup_stable_decay_schedule():
  c = config_lib.get_config("lm").optim
  c.update(lr=1.0, schedule="wsd", warmup_steps=10, cooldown_fraction=0.25, min_lr_ratio=0.0)
  f = optim.make_schedule(c, 110)
  np.testing.assert_allclose([f(0), f(5), f(10), f(84), f(85), f(97.5), f(110)],
                             [0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0], atol=1e-6)
  c.cooldown_fraction = 0.0
  with pytest.raises(ConfigError, match="cooldown_fraction"):
    optim.make_schedule(c, 110)


def test_muon_state_follows_the_scanned_layer_axis():
  m, p = _init(scan_layers=True)
  tx = optim.make_optimizer(_optim(), 100)
  g = jax.tree.map(lambda a: jax.random.normal(jax.random.PRNGKey(3), a.shape), p)
  u, _ = tx.update(g, tx.init(p), p)
  fc = np.asarray(u["blocks"]["block"]["fc"]["kernel"])  # [layers, 32, 128]
  assert fc.shape[0] == 4
  for layer in fc:
    s = np.linalg.svd(layer, compute_uv=False)
    assert s.min() > 0.3 * s.max()
  assert optax.tree.norm(u) > 0
