"""int8 post-training quantisation: int8 x int8 -> int32 products, error within the bound the
scales imply, the run's evaluators on the quantised model, 4x smaller storage."""

import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aigc_jax import train
from aigc_jax.tools import quantize
from aigc_jax.errors import ConfigError
from tests import helpers


def _bound(x, w, x_scale, w_scale):
  """Worst-case |int8 - float| of x @ w: rounding moves each input by <= x_scale / 2 and each
  weight by <= w_scale / 2 (per output column)."""
  ax, aw = np.abs(np.asarray(x)), np.abs(np.asarray(w))
  return (ax @ (np.ones_like(aw) * w_scale / 2) + (x_scale / 2) * aw.sum(0)
          + x.shape[-1] * x_scale * w_scale / 4)


def test_int8_dense_is_int8_and_within_the_bound():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(32, 64)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(64, 16)) * np.linspace(0.1, 3, 16), jnp.float32)
  x_scale = float(jnp.max(jnp.abs(x))) / 127
  dot = quantize.int8_dot_general(jnp.float32(x_scale))
  dims = (((1,), (0,)), ((), ()))
  y = dot(x, w, dims)
  w_scale = np.asarray(quantize.channel_scales(w, (0,)))[0]
  err = np.abs(np.asarray(y) - np.asarray(x @ w))
  assert np.all(err <= _bound(x, w, x_scale, w_scale) + 1e-4)
  assert err.max() > 0  # it did quantise
  eqns = jax.make_jaxpr(lambda a, b: dot(a, b, dims))(x, w).jaxpr.eqns
  dots = [e for e in eqns if e.primitive.name == "dot_general"]
  assert [tuple(str(v.aval.dtype) for v in e.invars) for e in dots] == [("int8", "int8")]
  assert str(dots[0].outvars[0].aval.dtype) == "int32"


def test_int8_conv_matches_float_within_the_bound():
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(4, 12, 12, 3)), jnp.float32)
  conv = nn.Conv(8, (3, 3), padding="VALID")
  params = conv.init(jax.random.PRNGKey(0), x)
  x_scale = float(jnp.max(jnp.abs(x))) / 127
  ref = conv.apply(params, x)
  q = nn.Conv(8, (3, 3), padding="VALID", conv_general_dilated=quantize.int8_conv(
      jnp.float32(x_scale))).apply(params, x)
  k = np.asarray(params["params"]["kernel"]).reshape(-1, 8)
  w_scale = np.abs(k).max(0) / 127
  patches = np.abs(np.asarray(x)).max() * k.shape[0]  # every patch entry <= max |x|
  bound = patches * w_scale / 2 + x_scale / 2 * np.abs(k).sum(0) + k.shape[0] * x_scale * w_scale
  assert np.all(np.abs(np.asarray(q - ref)) <= bound)
  assert 0 < float(jnp.max(jnp.abs(q - ref))) < 0.05 * float(jnp.max(jnp.abs(ref)))


def test_quantised_run_is_evaluated_by_its_evaluators_and_stored_4x_smaller(tfds_dir, tmp_path):
  c = helpers.tiny_config(tfds_dir, num_steps=60, log_every_steps=20, eval_every_steps=60,
                          checkpoint_every_steps=60)
  c.model.hidden = (128, 128)
  workdir = str(tmp_path / "run")
  summary = train.run(c, workdir)
  report = quantize.quantize_run(workdir, calibration_batches=4)
  assert report["float"]["test_accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-6)
  assert abs(report["int8"]["test_accuracy"] - report["float"]["test_accuracy"]) <= 0.02
  assert report["int8"]["test_loss"] != report["float"]["test_loss"]  # really computed in int8
  # Kernels 1 byte a weight; biases and one scale per output channel stay 4 bytes.
  kernels, biases = 40 * 128 + 128 * 128 + 128 * 10, 128 + 128 + 10
  assert report["bytes_float32"] == 4 * (kernels + biases)
  assert report["bytes_int8"] == kernels + 4 * 2 * biases
  assert report["size_ratio"] > 3.6
  stored = np.load(os.path.join(workdir, "int8", "params.npz"))
  kernels = [k for k in stored.files if k.endswith("kernel")]
  assert kernels and all(stored[k].dtype == np.int8 for k in kernels)
  scales = json.load(open(os.path.join(workdir, "int8", "activation_scales.json")))
  assert len(scales) == 3 and all(v > 0 for v in scales.values())  # one per dense layer
  with pytest.raises(ConfigError, match="at least one training batch"):
    quantize.quantize_run(workdir, calibration_batches=0)


def test_no_calibration_data_is_an_error():
  with pytest.raises(ConfigError, match="needs calibration data"):
    quantize.calibrate(lambda v, b: None, {}, [])


def _primitives(fn, *args):
  names = set()

  def visit(jaxpr):
    for e in jaxpr.eqns:
      names.add(e.primitive.name)
      for v in e.params.values():
        for sub in v if isinstance(v, (tuple, list)) else (v,):
          sub = getattr(sub, "jaxpr", sub)
          if hasattr(sub, "eqns"):
            visit(sub)
  visit(jax.make_jaxpr(fn)(*args).jaxpr)
  return names


def test_quantization_aware_training_fake_quantises_and_trains(tfds_dir, tmp_path):
  """model.qat="int8" (qwix): the loss rounds weights and inputs to the int8 grid, gradients
  flow through, and the run's loss falls like the float run's."""
  from aigc_jax.tasks import get_task  # pylint: disable=import-outside-toplevel
  c = helpers.tiny_config(tfds_dir, num_steps=30, log_every_steps=10, eval_every_steps=30,
                          checkpoint_every_steps=30)
  q = c.copy_and_resolve_references()
  q.qat = "int8"
  x = {"input": jnp.ones((8, 40)), "label": jnp.zeros((8,), jnp.int32)}
  spec = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in x.items()}
  prims = {}
  for name, cfg in (("float", c), ("qat", q)):
    task = get_task(cfg)
    params = task.init(jax.random.PRNGKey(0), spec)["params"]
    params = jax.tree.map(lambda a: getattr(a, "value", a), params,
                          is_leaf=lambda a: hasattr(a, "value"))
    prims[name] = _primitives(lambda p, t=task: jax.grad(
        lambda pp: t.loss(pp, {}, x, jax.random.PRNGKey(1), 0)[0])(p), params)
  assert "round" in prims["qat"] and "round" not in prims["float"]
  runs = {n: train.run(cfg, str(tmp_path / n)) for n, cfg in (("float", c), ("qat", q))}
  losses = {n: [m["loss"] for m in helpers.metrics(str(tmp_path / n))] for n in runs}
  assert losses["qat"][-1] < 0.9 * losses["qat"][0]
  assert abs(runs["qat"]["test_accuracy"] - runs["float"]["test_accuracy"]) < 0.1
  with pytest.raises(ConfigError, match="model.qat='int4'"):
    q.qat = "int4"
    get_task(q)
