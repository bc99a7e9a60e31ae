"""Prints the train step's speed for an experiment next to the input pipeline's.

  python -m benchmarks.train_step --config=experiments/cnn_mnist.py:quick
  python -m benchmarks.train_step --config=experiments/mnist1d.py --config.model.name=gru

Times the compiled step alone (random inputs of the right shapes, state donated) and the grain
pipeline alone, each as the median of several repeats, so either side's limit shows.
"""

import functools
import statistics
import time

import jax
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from aigc_jax import optim, sharding, step as step_lib
from aigc_jax.data import pipeline
from aigc_jax.tasks import get_task

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config.", lock_config=True)
_STEPS = flags.DEFINE_integer("steps", 50, "Steps per repeat.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Repeats; the median is reported.")


def _median_rate(fn, n: int, repeats: int) -> float:
  rates = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn(n)
    rates.append(n / (time.perf_counter() - t))
  return statistics.median(rates)


def main(_):
  c = _CONFIG.value
  mesh = sharding.make_mesh(c.mesh)
  task = get_task(c)
  split = pipeline.load_split(c.data, c.data.train_split)
  spec = pipeline.batch_spec(split, c.data.batch_size)
  tx = optim.make_optimizer(c.optim, 1000)
  create = functools.partial(step_lib.create_state, task, tx)
  boxed = jax.eval_shape(create, jax.random.PRNGKey(0), spec)
  state_sh = sharding.tree_shardings(boxed, mesh)
  state = jax.jit(lambda r: step_lib.unbox(create(r, spec)), out_shardings=state_sh)(
      jax.random.PRNGKey(0))
  it = pipeline.train_iterator(split, global_batch=c.data.batch_size, seed=0, process_index=0,
                               process_count=1)
  batch = sharding.host_to_global(next(it), mesh)
  t = time.perf_counter()
  step = step_lib.make_train_step(task, tx, state_sh, sharding.batch_sharding(mesh))
  step = step.lower(state, batch).compile()
  compile_s = time.perf_counter() - t

  def run_steps(n):
    nonlocal state
    for _ in range(n):
      state, metrics = step(state, batch)
    jax.block_until_ready(metrics)

  def read_batches(n):
    for _ in range(n):
      sharding.host_to_global(next(it), mesh)

  run_steps(3)
  step_rate = _median_rate(run_steps, _STEPS.value, _REPEATS.value)
  data_rate = _median_rate(read_batches, _STEPS.value * 4, _REPEATS.value)
  b = c.data.batch_size
  print(f"model={c.model.name} batch={b} devices={mesh.devices.size} backend={jax.default_backend()}")
  print(f"compile: {compile_s:.2f} s")
  print(f"train step: {1e3 / step_rate:.2f} ms  ({step_rate:.1f} steps/s, {step_rate * b:.0f} ex/s)")
  print(f"input pipeline: {1e3 / data_rate:.3f} ms/batch  ({data_rate * b:.0f} ex/s, "
        f"{data_rate / step_rate:.0f}x the step's consumption)")


if __name__ == "__main__":
  app.run(main)
