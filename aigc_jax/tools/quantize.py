"""Post-training int8 quantisation of a trained run, evaluated with the run's own evaluators.

  python -m aigc_jax.tools.quantize --workdir=DIR [--calibration_batches=8] [--which=latest]

Weights: symmetric int8 per output channel (the scale of each output unit is its largest
|weight| / 127). Activations: the input of every dense layer and convolution is quantised per
tensor with a scale calibrated as the largest |input| seen over a few training batches / 127.
The products run as int8 x int8 -> int32 (`lax.dot_general` / `conv_general_dilated` with
`preferred_element_type=int32`), rescaled to float after: flax's `dot_general` and
`conv_general_dilated` hooks, set per layer through a method interceptor, so no model changes.
Embedding tables are stored as int8 per row and looked up dequantised. Writes DIR/int8/
(params.npz: int8 arrays and their scales; activation_scales.json) and DIR/int8/report.json
with float and int8 results of every evaluator, side by side, and the stored sizes.
"""

import dataclasses
import json
import os
import threading

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from aigc_jax import checkpoint, evaluators, sharding, trees, writers
from aigc_jax.data import pipeline
from aigc_jax.errors import ConfigError
from aigc_jax.tasks import get_task

LAYERS = (nn.Dense, nn.DenseGeneral, nn.Conv)
_ACTIVE = threading.local()


def _path(module) -> str:
  return "/".join(module.scope.path)


def _target(context):
  return context.method_name == "__call__" and isinstance(context.module, LAYERS)


def calibrate(fn, variables, batches) -> dict[str, float]:
  """{layer path: activation scale} from running `fn(variables, batch)` eagerly (no jit, so the
  values are concrete) over the batches, recording each layer's largest |input|."""
  seen: dict[str, float] = {}

  def record(next_fun, args, kwargs, context):
    if _target(context):
      p = _path(context.module)
      seen[p] = max(seen.get(p, 0.0), float(jnp.max(jnp.abs(args[0]))))
    return next_fun(*args, **kwargs)

  n = 0
  with jax.disable_jit(), nn.intercept_methods(record):
    for batch in batches:
      fn(variables, batch)
      n += 1
  if not n:
    raise ConfigError("Quantising activations needs calibration data: no calibration batch was "
                      "read (the training split is empty or calibration_batches=0).")
  return {p: max(v, 1e-8) / 127.0 for p, v in seen.items()}


def _quantize(x, scale):
  return jnp.clip(jnp.round(x / scale), -127, 127).astype(jnp.int8)


def channel_scales(w, reduce_axes) -> jax.Array:
  """Per-output-channel scales: max |w| over the contracted axes / 127 (1 where all zero)."""
  m = jnp.max(jnp.abs(w), axis=reduce_axes, keepdims=True)
  return jnp.where(m > 0, m / 127.0, 1.0)


def int8_dot_general(x_scale):
  def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    del precision, preferred_element_type
    (_, rc), (lb, rb) = dimension_numbers
    if lb or rb:
      raise ConfigError("int8 quantisation supports dense layers without batch dimensions.")
    w_scale = channel_scales(rhs, rc)
    acc = jax.lax.dot_general(_quantize(lhs, x_scale), _quantize(rhs, w_scale),
                              dimension_numbers, preferred_element_type=jnp.int32)
    s = jnp.squeeze(w_scale, rc)  # the rhs's free axes: the output's last ones
    return acc.astype(jnp.float32) * x_scale * s.reshape((1,) * (acc.ndim - s.ndim) + s.shape)
  return dot_general


def int8_conv(x_scale):
  def conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
           dimension_numbers=None, feature_group_count=1, batch_group_count=1, precision=None,
           preferred_element_type=None):
    del precision, preferred_element_type
    w_scale = channel_scales(rhs, tuple(range(rhs.ndim - 1)))  # flax kernels: (..., in, out)
    acc = jax.lax.conv_general_dilated(
        _quantize(lhs, x_scale), _quantize(rhs, w_scale), window_strides, padding,
        lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers, feature_group_count=feature_group_count,
        batch_group_count=batch_group_count, preferred_element_type=jnp.int32)
    return acc.astype(jnp.float32) * x_scale * w_scale.reshape((1,) * (acc.ndim - 1) + (-1,))
  return conv


def _int8_interceptor(scales: dict[str, float]):
  def intercept(next_fun, args, kwargs, context):
    if not _target(context) or getattr(_ACTIVE, "on", False):
      return next_fun(*args, **kwargs)
    p = _path(context.module)
    if p not in scales:
      raise ConfigError(f"Layer {p} has no calibrated activation scale: calibration batches "
                        "never reached it.")
    attr, make = ((("conv_general_dilated", int8_conv) if isinstance(context.module, nn.Conv)
                   else ("dot_general", int8_dot_general)))
    # The layer reads this hook when called: set on the bound instance for this call only.
    object.__setattr__(context.module, attr, make(jnp.float32(scales[p])))
    try:
      return next_fun(*args, **kwargs)
    finally:
      object.__setattr__(context.module, attr, None)
  return intercept


def wrap(task, scales: dict[str, float]):
  """`task` whose eval functions compute every dense layer and convolution in int8."""
  def wrapped(fn):
    def call(*args, **kw):
      with nn.intercept_methods(_int8_interceptor(scales)):
        return fn(*args, **kw)
    return call
  fns = {k: wrapped(f) for k, f in task.eval_fns.items()}
  return dataclasses.replace(task, eval_fns=fns)


def quantized_params(params) -> tuple[dict, dict]:
  """(int8 arrays and float32 scales, by path; float32 arrays kept as they are): what is
  stored. Matrices and kernels per output channel (the last axis), embeddings per row."""
  stored, kinds = {}, {}
  for path, w in zip(trees.paths(params), jax.tree.leaves(params)):
    w = np.asarray(w, np.float32)
    if w.ndim >= 2:
      axes = (w.ndim - 1,) if path.endswith("embedding") else tuple(range(w.ndim - 1))
      s = np.asarray(channel_scales(w, axes))
      stored[path] = np.clip(np.round(w / s), -127, 127).astype(np.int8)
      stored[path + ".scale"] = s.astype(np.float32)
      kinds[path] = "int8"
    else:
      stored[path], kinds[path] = w, "float32"
  return stored, kinds


def _bytes(arrays: dict) -> int:
  return int(sum(a.nbytes for a in arrays.values()))


def main(argv=None):
  from absl import app, flags  # pylint: disable=import-outside-toplevel
  flags.DEFINE_string("workdir", None, "A trained run's workdir.", required=True)
  flags.DEFINE_integer("calibration_batches", 8, "Training batches to calibrate activations on.")
  flags.DEFINE_enum("which", "latest", ["best", "latest"], "Checkpoint to quantise.")
  F = flags.FLAGS

  def run(_):
    print(json.dumps(quantize_run(F.workdir, F.calibration_batches, F.which), indent=1))
  app.run(run, argv)


def quantize_run(workdir: str, calibration_batches: int = 8, which: str = "latest") -> dict:
  """Calibrates, evaluates float and int8 with the run's evaluators, stores DIR/int8/."""
  if calibration_batches < 1:
    raise ConfigError(f"calibration_batches={calibration_batches}: activations need at least "
                      "one training batch to calibrate their scales on.")
  trained = checkpoint.load_workdir(workdir, which)
  config = trained.config
  task = get_task(config)
  if "metrics" not in task.eval_fns:
    raise ConfigError(f"Task {config.task!r} has no metrics function to calibrate with.")
  split = pipeline.load_split(config.data, config.data.train_split)
  batches = pipeline.eval_batches(split, local_batch=min(config.data.batch_size, 256),
                                  process_index=0, process_count=1)
  calib = [b for _, b in zip(range(calibration_batches), batches)]
  rng = jax.random.PRNGKey(0)
  scales = calibrate(lambda v, b: task.eval_fns["metrics"](v, b, rng), trained.variables, calib)
  mesh = sharding.make_mesh(config.mesh)
  metric_config = config.copy_and_resolve_references()
  with metric_config.unlocked():  # the run's metric evaluators (samples and plots aside)
    metric_config.evals = {k: v for k, v in config.evals.items() if v.type == "metrics"}
  if not metric_config.evals:
    raise ConfigError(f"{workdir} has no metrics evaluator to compare float and int8 with.")
  replicated = jax.tree.map(
      lambda _: jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()), trained.variables)
  results = {}
  for name, t in (("float", task), ("int8", wrap(task, scales))):
    ctx = evaluators.Context(config=metric_config, task=t, mesh=mesh, workdir=workdir,
                             variables_sharding=replicated)
    out = {}
    for ev in evaluators.build(metric_config, ctx):
      rng_ev = evaluators.rng_for(config.seed, ev.name, trained.step)
      out.update({f"{ev.name}_{k}": float(v) for k, v in
                  (ev.run(trained.variables, trained.step, rng_ev) or {}).items()})
    results[name] = out
  stored, kinds = quantized_params(trained.variables["params"])
  float_bytes = sum(np.asarray(w).size * 4 for w in jax.tree.leaves(trained.variables["params"]))
  out_dir = os.path.join(workdir, "int8")
  os.makedirs(out_dir, exist_ok=True)
  np.savez(os.path.join(out_dir, "params.npz"), **stored)
  writers.atomic_write(os.path.join(out_dir, "activation_scales.json"),
                       json.dumps(scales, indent=1))
  report = {"checkpoint_step": trained.step, "calibration_batches": len(calib),
            "float": results["float"], "int8": results["int8"],
            "bytes_float32": float_bytes, "bytes_int8": _bytes(stored),
            "size_ratio": float_bytes / _bytes(stored),
            "int8_arrays": sum(k == "int8" for k in kinds.values()),
            "float32_arrays": sum(k == "float32" for k in kinds.values())}
  writers.atomic_write(os.path.join(out_dir, "report.json"), json.dumps(report, indent=1))
  return report


if __name__ == "__main__":
  main()
