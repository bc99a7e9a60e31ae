"""GPT model: shapes, causality, key/value-cache sampling, sharded equivalence, parameter splits."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import flax.linen as nn
from flax.core import meta

from aigc_jax import checkpoint, models, sharding, train
from aigc_jax.samplers import text
from aigc_jax.tools import sample
from aigc_jax.models import gpt
from aigc_jax.sharding import Mesh
from aigc_jax import config as config_lib
from tests import helpers

TINY = dict(name="gpt", vocab_size=37, block_size=16, num_layers=2, num_heads=2, width=32)


def _model(**kw):
  return models.get_model(config_lib.get_config().model.__class__({**TINY, **kw}))


def _params(model, seed=0):
  v = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, model.block_size), jnp.int32))
  return meta.unbox(v)["params"]


@pytest.mark.parametrize("kw", [{}, {"tie_embeddings": False, "use_bias": False}])
def test_shapes_and_causality(kw):
  model = _model(**kw)
  params = _params(model)
  x = jax.random.randint(jax.random.PRNGKey(1), (3, 16), 0, 37)
  logits = model.apply({"params": params}, x)
  assert logits.shape == (3, 16, 37) and logits.dtype == jnp.float32
  y = x.at[:, 9].set((x[:, 9] + 1) % 37)  # change token 9
  changed = model.apply({"params": params}, y)
  np.testing.assert_allclose(changed[:, :9], logits[:, :9], atol=1e-6)  # earlier: unchanged
  assert np.abs(np.asarray(changed[:, 9:] - logits[:, 9:])).max() > 1e-4  # later: changed
  with pytest.raises(ValueError, match="exceeds the model's block_size 16"):
    model.apply({"params": params}, jnp.zeros((1, 17), jnp.int32))


def test_bf16_compute_keeps_fp32_params():
  model = _model(dtype="bfloat16")
  params = _params(model)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
  logits = model.apply({"params": params}, jnp.zeros((2, 16), jnp.int32))
  assert logits.dtype == jnp.bfloat16


def test_cached_decoding_matches_one_pass():
  model = _model()
  params = _params(model)
  x = jax.random.randint(jax.random.PRNGKey(2), (2, 12), 0, 37)
  full = model.apply({"params": params}, x)
  cache = model.init(jax.random.PRNGKey(0), jnp.zeros((2, 16), jnp.int32), decode=True)["cache"]
  logits, mut = model.apply({"params": params, "cache": cache}, x[:, :5], decode=True,
                            mutable=["cache"])
  steps = [logits]
  for t in range(5, 12):
    logits, mut = model.apply({"params": params, **mut}, x[:, t:t + 1], decode=True,
                              mutable=["cache"])
    steps.append(logits)
  np.testing.assert_allclose(jnp.concatenate(steps, axis=1), full, atol=2e-5)


@pytest.mark.parametrize("temperature,top_k,top_p", [(0.0, 0, 1.0), (0.8, 10, 1.0),
                                                     (1.0, 0, 0.9)])
def test_kv_cache_sampling_equals_uncached(temperature, top_k, top_p):
  model = _model()
  params = _params(model)
  prompt = jnp.asarray([[1, 2, 3], [4, 5, 6]], jnp.int32)
  kw = dict(max_new_tokens=25, temperature=temperature, top_k=top_k, top_p=top_p)
  rng = jax.random.PRNGKey(7)
  cached = text.generate(model, params, prompt, rng, use_cache=True, **kw)
  uncached = text.generate(model, params, prompt, rng, use_cache=False, **kw)
  assert cached.shape == (2, 28)  # past the 16-token block: the window path takes over
  np.testing.assert_array_equal(cached, uncached)
  np.testing.assert_array_equal(cached[:, :3], prompt)


def test_top_k_and_top_p_filter():
  logits = jnp.log(jnp.asarray([[0.5, 0.3, 0.15, 0.05]]))
  k2 = text.filter_logits(logits, 1.0, 2, 1.0)
  assert np.isfinite(np.asarray(k2)).tolist() == [[True, True, False, False]]
  p = text.filter_logits(logits, 1.0, 0, 0.7)  # 0.5 + 0.3 reach 0.7
  assert np.isfinite(np.asarray(p)).tolist() == [[True, True, False, False]]


def _lm_config(data_dir, tfds_dir, **mesh):
  if not os.path.isdir(os.path.join(data_dir, "tinyshakespeare")):
    pytest.skip("no tiny Shakespeare")
  c = config_lib.get_config(task="lm")
  config_lib.add_eval(c, "validation", "metrics")
  c.model = {**TINY, "vocab_size": 0, "width": 64, "num_heads": 4}
  c.data.update(dict(name="text_files/tinyshakespeare", data_dir=data_dir, tfds_dir=tfds_dir,
                     tokenizer="char", seq_len=16, batch_size=16, eval_batch_size=1024,
                     eval_split="validation", prefetch=0))
  c.optim.update(lr=3e-3)
  c.train.update(dict(num_steps=6, log_every_steps=1, eval_every_steps=3,
                      checkpoint_every_steps=3, progress_bar=False,
                      best_metric="validation_loss"))
  c.evals.samples.max_new_tokens = 20
  c.mesh.update(mesh)
  return c


def test_loss_on_one_device_equals_the_8_device_mesh(data_dir, tfds_dir, tmp_path):
  one = _lm_config(data_dir, tfds_dir, data=1, fsdp=1, tensor=1)
  train.run(one, str(tmp_path / "one"), devices=jax.devices()[:1])
  eight = _lm_config(data_dir, tfds_dir, data=2, fsdp=2, tensor=2)
  train.run(eight, str(tmp_path / "eight"))
  a = [m["loss"] for m in helpers.metrics(str(tmp_path / "one"))]
  b = [m["loss"] for m in helpers.metrics(str(tmp_path / "eight"))]
  np.testing.assert_allclose(a, b, rtol=2e-5)
  assert a[-1] < a[0]
  # A checkpoint saved on the 8-device mesh restores onto one device for sampling.
  params = checkpoint.load_workdir(str(tmp_path / "eight")).variables["params"]
  assert params["wte"]["embedding"].shape == (65, 64)
  assert len(params["block0"]["fc"]["kernel"].sharding.device_set) == 1


def test_large_weights_are_split_over_the_mesh():
  mesh = Mesh(np.asarray(jax.devices()).reshape(2, 2, 2), sharding.MESH_AXES,
              axis_types=(jax.sharding.AxisType.Auto,) * 3)
  model = _model(width=64, num_heads=4, vocab_size=64)
  boxed = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                            jnp.zeros((1, 16), jnp.int32))["params"])
  sh = sharding.tree_shardings(boxed, mesh)
  fc = sh["block0"]["fc"]["kernel"].spec  # (embed, mlp) -> (fsdp, tensor)
  assert tuple(fc) == ("fsdp", "tensor")
  qkv = sh["block0"]["qkv"]["kernel"].spec  # (embed, None, heads, kv)
  assert qkv[0] == "fsdp" and qkv[2] == "tensor"
  wte = sh["wte"]["embedding"].spec  # (vocab, embed)
  assert tuple(wte) == ("tensor", "fsdp")
  params = jax.jit(lambda: meta.unbox(model.init(jax.random.PRNGKey(0), jnp.zeros(
      (1, 16), jnp.int32))["params"]), out_shardings=sh)()
  shard = params["block0"]["fc"]["kernel"].addressable_shards[0].data
  assert shard.shape == (32, 128)  # a quarter of the 64 x 256 kernel on each device


def test_trained_workdir_samples_from_the_best_checkpoint(data_dir, tfds_dir, tmp_path):
  c = _lm_config(data_dir, tfds_dir, data=1)
  s = train.run(c, str(tmp_path), devices=jax.devices()[:1])
  # The best value is the lowest validation loss logged, and best/ holds that step's state,
  # which is what sampling reads.
  logged = {e["step"]: e["loss"] for e in helpers.metrics(str(tmp_path), "validation")}
  assert sorted(logged) == [3, 6] and s["validation_loss_best"] == min(logged.values())
  best_step = min(logged, key=logged.get)
  assert checkpoint.load_workdir(str(tmp_path)).step == best_step
  assert sorted(os.listdir(tmp_path / "samples")) == ["samples_step_000003.txt",
                                                     "samples_step_000006.txt"]
  _, model, params, tok = sample.load_text_workdir(str(tmp_path))
  best = checkpoint.load_workdir(str(tmp_path), "best").variables["params"]
  jax.tree.map(np.testing.assert_array_equal, params, best)
  assert tok.vocab_size == 65
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  out = subprocess.run(
      [sys.executable, "-m", "aigc_jax.sample", f"--workdir={tmp_path}", "--prompt=ROMEO:",
       "--max_new_tokens=20", "--seed=3"], capture_output=True, text=True, env=env, timeout=300)
  assert out.returncode == 0, out.stderr
  assert out.stdout.startswith("ROMEO:") and len(out.stdout.split("\n---")[0]) == 26


@pytest.mark.parametrize("kw", [{"position": "rotary"}, {"remat": True}])
def test_rotary_and_remat_variants(kw):
  model = _model(**kw)
  params = _params(model)
  x = jax.random.randint(jax.random.PRNGKey(3), (2, 12), 0, 37)
  full = model.apply({"params": params}, x)
  if kw.get("position") == "rotary":
    assert "wpe" not in params
    cache = model.init(jax.random.PRNGKey(0), jnp.zeros((2, 16), jnp.int32),
                       decode=True)["cache"]
    a, mut = model.apply({"params": params, "cache": cache}, x[:, :7], decode=True,
                         mutable=["cache"])
    b, _ = model.apply({"params": params, **mut}, x[:, 7:], decode=True, mutable=["cache"])
    np.testing.assert_allclose(jnp.concatenate([a, b], 1), full, atol=2e-5)
  else:  # same function, same gradients; only memory differs
    plain = _model()
    loss = lambda m: lambda p: jnp.mean(m.apply({"params": p}, x) ** 2)  # noqa: E731
    ga, gb = jax.grad(loss(model))(params), jax.grad(loss(plain))(params)
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, atol=1e-6), ga, gb)
    np.testing.assert_allclose(full, plain.apply({"params": params}, x), atol=1e-6)


def test_scanned_layers_compute_what_unrolled_layers_compute():
  kw = dict(vocab_size=17, block_size=8, num_layers=3, num_heads=2, width=16)
  unrolled = gpt.Model(**kw)
  scanned = gpt.Model(**kw, scan_layers=True)
  x = jax.random.randint(jax.random.PRNGKey(0), (2, 8), 0, 17)
  p = nn.meta.unbox(unrolled.init(jax.random.PRNGKey(1), x)["params"])
  ps = nn.meta.unbox(scanned.init(jax.random.PRNGKey(1), x)["params"])
  assert "blocks" in ps and "block0" not in ps
  # The same weights, stacked on a leading layers axis.
  stacked = jax.tree.map(lambda *b: jnp.stack(b), *[p[f"block{i}"] for i in range(3)])
  ps = {**{k: v for k, v in p.items() if not k.startswith("block")}, "blocks": {"block": stacked}}
  np.testing.assert_allclose(unrolled.apply({"params": p}, x),
                             scanned.apply({"params": ps}, x), atol=1e-5, rtol=1e-5)
  # Decoding one token at a time through the scanned cache gives the same logits too.
  cache = scanned.init(jax.random.PRNGKey(1), x, decode=True)["cache"]
  outs = []
  for t in range(8):
    out, upd = scanned.apply({"params": ps, "cache": cache}, x[:, t:t + 1], decode=True,
                             mutable=["cache"])
    cache = upd["cache"]
    outs.append(out)
  np.testing.assert_allclose(jnp.concatenate(outs, 1), unrolled.apply({"params": p}, x),
                             atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("policy", ["full", "dots_saveable", True])
def test_remat_policies_change_memory_not_results(policy):
  kw = dict(vocab_size=17, block_size=8, num_layers=2, num_heads=2, width=16)
  x = jax.random.randint(jax.random.PRNGKey(0), (2, 8), 0, 17)
  base, remat = gpt.Model(**kw), gpt.Model(**kw, remat=policy)
  p = base.init(jax.random.PRNGKey(1), x)["params"]
  loss = lambda m: jax.grad(lambda q: jnp.mean(m.apply({"params": q}, x) ** 2))(p)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-5),
               nn.meta.unbox(loss(base)), nn.meta.unbox(loss(remat)))
  with pytest.raises(ValueError, match="model.remat='sometimes'"):
    gpt.Model(**kw, remat="sometimes").init(jax.random.PRNGKey(1), x)
