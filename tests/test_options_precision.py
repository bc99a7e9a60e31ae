"""Mixed precision is one policy for every model: every matmul and convolution of every task's
loss runs in bfloat16, while the loss, gradients and parameters stay float32."""

import jax
import ml_collections
import jax.numpy as jnp
import numpy as np
import pytest

from aigc_jax.options import precision
from aigc_jax.errors import ConfigError
from aigc_jax.tasks import get_task
from experiments import (ae_mnist, cnn_mnist, dcgan_mnist, gpt_shakespeare_char, mae_mnist,
                         mlm_shakespeare_char, mnist1d, simclr_mnist, vae_mnist)

_B = 8


def _images(views=0):
  rng = np.random.default_rng(0)
  shape = (_B, views, 28, 28, 1) if views else (_B, 28, 28, 1)
  return {"input": rng.uniform(0, 1, shape).astype(np.float32),
          "label": rng.integers(0, 10, _B).astype(np.int32)}


def _tokens():
  rng = np.random.default_rng(0)
  return {"input": rng.integers(0, 65, (_B, 32)).astype(np.int32),
          "target": rng.integers(0, 65, (_B, 32)).astype(np.int32)}


def _sequences():
  rng = np.random.default_rng(0)
  return {"input": rng.normal(size=(_B, 40)).astype(np.float32),
          "label": rng.integers(0, 10, _B).astype(np.int32)}


def _mnist1d(model):
  c = mnist1d.get_config()
  c.sweep = ()
  c.model = ml_collections.ConfigDict(model)
  return c


def _small_gpt(c):
  c.model.update(num_layers=2, num_heads=2, width=64, block_size=32)
  return c


CASES = {
    "cnn": (lambda: cnn_mnist.get_config("quick"), _images),
    "autoencoder": (lambda: ae_mnist.get_config("quick"), _images),
    "vae": (lambda: vae_mnist.get_config("quick"), _images),
    "dcgan": (lambda: dcgan_mnist.get_config("quick"), _images),
    "mae": (lambda: mae_mnist.get_config("quick"), _images),
    "simclr": (lambda: simclr_mnist.get_config("quick"), lambda: _images(views=2)),
    "gpt": (lambda: _small_gpt(gpt_shakespeare_char.get_config("quick")), _tokens),
    "mlm": (lambda: _small_gpt(mlm_shakespeare_char.get_config("quick")), _tokens),
    "cnn1d": (lambda: _mnist1d({"name": "cnn1d"}), _sequences),
    "gru": (lambda: _mnist1d({"name": "gru"}), _sequences),  # its loop carry follows the dtype
}


def _matmul_dtypes(jaxpr):
  """Operand dtypes of every dot_general and convolution, sub-computations included."""
  out = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name in ("dot_general", "conv_general_dilated"):
      out.append(tuple(str(v.aval.dtype) for v in eqn.invars))
    for value in eqn.params.values():
      for sub in value if isinstance(value, (tuple, list)) else (value,):
        sub = getattr(sub, "jaxpr", sub)  # a closed jaxpr's inner one
        if hasattr(sub, "eqns"):
          out += _matmul_dtypes(sub)
  return out


def _losses(task):
  return [task.loss] if task.loss else [p.loss for p in task.players]


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_model_computes_in_bfloat16_with_float32_parameters(name, data_dir, tfds_dir):
  make_config, make_batch = CASES[name]
  batch = make_batch()
  tasks = {}
  for dtype in ("float32", "bfloat16"):
    c = make_config()
    c.data.update(data_dir=data_dir, tfds_dir=tfds_dir)  # the GPTs' vocabulary comes from data
    c.compute_dtype = dtype
    tasks[dtype] = get_task(c)
  spec = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in batch.items()}
  variables = dict(tasks["float32"].init(jax.random.PRNGKey(0), spec))
  params = variables.pop("params")
  params = jax.tree.map(lambda x: getattr(x, "unbox", lambda: x)(), params,
                        is_leaf=lambda x: hasattr(x, "unbox"))
  key = jax.random.PRNGKey(1)
  for i, (loss32, loss16) in enumerate(zip(_losses(tasks["float32"]), _losses(tasks["bfloat16"]))):
    jaxpr = jax.make_jaxpr(lambda p, f=loss16: f(p, variables, batch, key, 0))(params).jaxpr
    dtypes = _matmul_dtypes(jaxpr)
    assert dtypes and all(d == ("bfloat16", "bfloat16") for d in dtypes), (i, dtypes)
    full = float(loss32(params, variables, batch, key, 0)[0])
    (value, (metrics, new_state)), grads = jax.value_and_grad(
        lambda p, f=loss16: f(p, variables, batch, key, 0), has_aux=True)(params)
    assert value.dtype == jnp.float32
    # bfloat16 keeps 8 mantissa bits: a relative error of a few parts in a thousand per op.
    assert float(value) == pytest.approx(full, rel=3e-2, abs=3e-3)
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads))
    assert all(m.dtype != jnp.bfloat16 for m in jax.tree.leaves((metrics, new_state)))


def test_eval_functions_take_float32_and_return_float32():
  c = cnn_mnist.get_config("quick")
  c.compute_dtype = "bfloat16"
  task = get_task(c)
  batch = _images()
  spec = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in batch.items()}
  variables = task.init(jax.random.PRNGKey(0), spec)
  logits = task.eval_fns["predict"](variables, batch["input"])
  assert logits.dtype == jnp.float32
  jaxpr = jax.make_jaxpr(task.eval_fns["predict"])(variables, batch["input"]).jaxpr
  assert all(d == ("bfloat16", "bfloat16") for d in _matmul_dtypes(jaxpr))


def test_float32_policy_leaves_the_task_alone_and_bad_names_are_refused():
  c = cnn_mnist.get_config("quick")
  task = get_task(c)
  assert precision.wrap(task, jnp.float32) is task
  c.compute_dtype = "bf16"
  with pytest.raises(ConfigError, match="compute_dtype='bf16'.*bfloat16"):
    get_task(c)
