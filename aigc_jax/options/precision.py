"""Mixed precision as one policy for every model (`config.compute_dtype`).

Parameters, optimiser state and batch statistics stay float32. Where a task calls its model,
the policy casts the parameters to the compute dtype, and a flax method interceptor casts the
floating inputs and outputs of every module method (the batch, noise drawn inside a model, constant position
tables), so every matmul and convolution runs in bfloat16 whatever the model, with no dtype
field in it. What comes back to the trainer (loss, metrics, evaluator outputs, updated
statistics) is cast to float32, and targets the task reads from the batch stay float32.

A model with a `dtype` field (the GPT) is given the compute dtype instead and casts each weight
where it uses it: under FSDP XLA then gathers float32 shards and converts them, which measured
1 GiB less memory per chip than gathering a whole bfloat16 copy (GPT-2 124M on v5e-8, README). The gradient of the cast returns
float32 gradients to the float32 parameters. Losses take logits in float32 themselves
(losses.softmax_cross_entropy), and flax's norms reduce in float32, as does jax's attention
softmax. Models need no dtype field for this: their layers follow their inputs' dtype (a GPT's
`model.dtype`, when set, still overrides its own compute dtype).
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from aigc_jax import models, tasks
from aigc_jax.errors import ConfigError

DTYPES = ("float32", "bfloat16", "float16")
DEFAULTS = {
    # "bfloat16" computes in bfloat16 with float32 parameters, optimiser state, loss and
    # softmax; "float32" is full precision.
    "compute_dtype": "float32",
}


def compute_dtype(config):
  name = config.get("compute_dtype", "float32") or "float32"
  if name not in DTYPES:
    raise ConfigError(f"compute_dtype={name!r} is not one of {DTYPES}: set "
                      "--config.compute_dtype=bfloat16 for mixed precision, float32 for none.")
  return jnp.dtype(name)


def check(config) -> None:
  compute_dtype(config)


def configure_task(config):
  """A model with an empty `dtype` field gets the compute dtype (in a copy of the config); one
  with its own dtype keeps it. Either way it casts its own weights where it uses them."""
  dtype = compute_dtype(config)
  if not _casts_at_use(config):
    return config
  if not config.model.get("dtype", ""):
    config = config.copy_and_resolve_references()
    with config.unlocked():
      config.model.dtype = dtype.name
  return config


def _casts_at_use(config) -> bool:
  return "name" in config.model and "dtype" in models.fields(config.model.name)


def wrap_task(task, config):
  """The task with its loss(es) and eval functions run at the compute dtype; unchanged for
  float32."""
  return wrap(task, compute_dtype(config), cast_params=not _casts_at_use(config))


def _floating(x):
  return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)


def cast(tree, dtype):
  """Floating arrays of `tree` to `dtype`; integers, keys and non-arrays unchanged."""
  return jax.tree.map(lambda x: x.astype(dtype) if _floating(x) else x, tree)


def _interceptor(dtype):
  def intercept(next_fun, args, kwargs, context):
    del context
    # Outputs too: state a model makes for itself (an RNN's initial carry) must match the
    # dtype its loop carries.
    return cast(next_fun(*cast(args, dtype), **cast(kwargs, dtype)), dtype)
  return intercept


def _loss(fn, dtype, cast_params):
  def loss(params, state, batch, rng, step):
    params = cast(params, dtype) if cast_params else params
    with nn.intercept_methods(_interceptor(dtype)):
      value, (metrics, new_state) = fn(params, state, batch, rng, step)
    return value.astype(jnp.float32), (cast(metrics, jnp.float32), cast(new_state, jnp.float32))
  return loss


def _eval_fn(fn, dtype, cast_params):
  def wrapped(variables, *args, **kw):
    variables = cast(variables, dtype) if cast_params else variables
    with nn.intercept_methods(_interceptor(dtype)):
      out = fn(variables, *args, **kw)
    return cast(out, jnp.float32)
  return wrapped


def wrap(task, dtype, cast_params=True):
  """`task` with its loss(es) and eval functions run at `dtype` (its parameters cast unless the
  model casts them itself); unchanged for float32."""
  dtype = jnp.dtype(dtype)
  if dtype == jnp.float32:
    return task
  fns = {k: _eval_fn(f, dtype, cast_params) if tasks.EVAL_FNS[k] == tasks.VARIABLES else f
         for k, f in task.eval_fns.items()}
  players = tuple(dataclasses.replace(p, loss=_loss(p.loss, dtype, cast_params))
                  for p in task.players)
  return dataclasses.replace(task, loss=task.loss and _loss(task.loss, dtype, cast_params),
                             eval_fns=fns, players=players)
