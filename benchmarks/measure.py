"""Timing of a config's compiled train step and of its input pipeline, shared by benchmarks."""

import statistics
import time

import jax

from aigc_jax import sharding, step as step_lib
from aigc_jax.data import pipeline
from aigc_jax.tasks import get_task


def _median_rate(fn, n: int, repeats: int) -> float:
  rates = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn(n)
    rates.append(n / (time.perf_counter() - t))
  return statistics.median(rates)


def pipeline_rate(c, n: int, repeats: int, mesh=None, it=None) -> float:
  """Batches/s of config `c`'s training input: grain iterator (with its prefetch thread),
  gathered and put on the devices."""
  mesh = mesh or sharding.make_mesh(c.mesh)
  if it is None:
    split = pipeline.load_split(c.data, c.data.train_split)
    it = pipeline.train_iterator(split, global_batch=c.data.batch_size, seed=0, process_index=0,
                                 process_count=1, prefetch=c.data.prefetch)

  def read_batches(k):
    for _ in range(k):
      jax.block_until_ready(sharding.host_to_global(next(it), mesh))

  read_batches(3)
  return _median_rate(read_batches, n, repeats)


def measure(c, steps: int = 50, repeats: int = 5, data_steps: int | None = None) -> dict:
  """Compile time, train-step rate and input-pipeline rate (batches/s) of config `c`."""
  mesh = sharding.make_mesh(c.mesh)
  task = get_task(c)
  split = pipeline.load_split(c.data, c.data.train_split)
  spec = pipeline.batch_spec(split, c.data.batch_size)
  tx = step_lib.make_tx(task, c.optim, 1000)
  _, state_sh, init = step_lib.sharded_state(task, tx, jax.random.PRNGKey(0), spec, mesh)
  state = init()
  it = pipeline.train_iterator(split, global_batch=c.data.batch_size, seed=0, process_index=0,
                               process_count=1, prefetch=c.data.prefetch)
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

  run_steps(3)
  step_rate = _median_rate(run_steps, steps, repeats)
  data_rate = pipeline_rate(c, data_steps or steps * 4, repeats, mesh, it)
  return {"compile_s": compile_s, "step_rate": step_rate, "data_rate": data_rate,
          "devices": mesh.devices.size}
