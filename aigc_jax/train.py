"""The one training loop: mesh -> init or resume -> step -> log -> eval -> checkpoint -> finish.

`run(config, workdir)` is idempotent: rerunning it on the same workdir resumes from the last
complete checkpoint with the same data order, and a finished run only reports its summary.
"""

import json
import math
import os
import signal
import time

import jax
import ml_collections
import numpy as np
from absl import logging

from aigc_jax import checkpoint, optim, sample, sharding, step as step_lib, writers
from aigc_jax.data import clean, lm, ops, pipeline, tokenizers
from aigc_jax.errors import ConfigError
from aigc_jax.tasks import get_task


def validate(config) -> None:
  """Checks that need no data or devices, so mistakes surface in a second, not after compiling."""
  t = config.train
  if (t.num_steps > 0) == (t.num_epochs > 0):
    raise ConfigError("Set exactly one of train.num_steps and train.num_epochs to a positive value "
                      f"(got num_steps={t.num_steps}, num_epochs={t.num_epochs}).")
  for k in ("log_every_steps", "eval_every_steps", "checkpoint_every_steps"):
    if t[k] <= 0:
      raise ConfigError(f"train.{k} must be positive, got {t[k]}.")
  for k in ("batch_size", "eval_batch_size"):
    if config.data[k] <= 0:
      raise ConfigError(f"data.{k} must be positive, got {config.data[k]}.")
  ops.parse(config.data.preprocess)
  if config.train.best_mode not in ("min", "max"):
    raise ConfigError(f"train.best_mode={config.train.best_mode!r}; valid: min, max.")
  clean.parse(config.data.text.clean)
  if config.data.tokenizer:
    lm.validate(config.data)
  optim.make_optimizer(config.optim, 1)


def _write_json(path: str, obj) -> None:
  if jax.process_index() == 0:
    writers.atomic_write(path, json.dumps(obj, indent=2, sort_keys=True))


def _save_config(config, workdir: str) -> None:
  path = os.path.join(workdir, "config.json")
  new = json.loads(config.to_json_best_effort())
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    if old != new:
      logging.warning("Config differs from the one in %s; continuing with the new one.", path)
  _write_json(path, new)


def _check_inputs(task, spec: dict) -> None:
  missing = [k for k in task.input_keys if k not in spec]
  if missing:
    raise ConfigError(f"The task needs batch feature(s) {missing} but the data has "
                      f"{sorted(spec)}; map them with data.preprocess, e.g. rename(image='input')."
                      + (f" {task.input_help}" if task.input_help else ""))


class _Preemption:
  """SIGTERM (what schedulers send before preempting) -> checkpoint at the next step, then exit."""

  def __init__(self):
    self.requested = False
    try:
      self._old = signal.signal(signal.SIGTERM, self._handle)
    except ValueError:  # not in the main thread
      self._old = None

  def _handle(self, *_):
    self.requested = True

  def restore(self):
    if self._old is not None:
      signal.signal(signal.SIGTERM, self._old)


def evaluate(eval_step, state, split, mesh, global_batch: int, finalize=None) -> dict:
  """Mean of the task's eval sums over the whole split (padding masked out), then the task's
  derived metrics (e.g. perplexity)."""
  local = global_batch // jax.process_count()
  totals = None
  for batch in pipeline.eval_batches(split, local_batch=local, process_index=jax.process_index(),
                                     process_count=jax.process_count()):
    sums = eval_step(state, sharding.host_to_global(batch, mesh))
    totals = sums if totals is None else jax.tree.map(lambda a, b: a + b, totals, sums)
  totals = jax.device_get(totals)
  count = float(totals.pop("count"))
  means = {k: float(v) / count for k, v in totals.items()}
  return finalize(means) if finalize else means


class _BestKeeper:
  """DIR/best/: the checkpoint at the evaluation with the best `train.best_metric` so far."""

  def __init__(self, config, workdir: str, metrics_path: str, start: int):
    t = config.train
    self.metric, self.mode, self.split = t.best_metric, t.best_mode, config.data.eval_split
    self.ckpt = checkpoint.Checkpointer(os.path.join(workdir, checkpoint.BEST), keep=1,
                                        async_save=t.async_checkpoints) if self.metric else None
    history = [e[self.metric] for e in writers.read_metrics(metrics_path)
               if e["split"] == self.split and self.metric in e and e["step"] <= start]
    self.best = (min if self.mode == "min" else max)(history) if history else None

  def update(self, step: int, state, metrics: dict) -> None:
    if not self.ckpt:
      return
    if self.metric not in metrics:
      raise ConfigError(f"train.best_metric={self.metric!r} is not an evaluation metric; "
                        f"valid: {', '.join(sorted(metrics))}.")
    value = metrics[self.metric]
    if self.best is None or (value < self.best if self.mode == "min" else value > self.best):
      self.best = value
      if step not in self.ckpt.all_steps():  # a resumed run replays to the same state
        self.ckpt.save(step, state, force=True)

  def close(self) -> None:
    if self.ckpt:
      self.ckpt.wait()
      self.ckpt.close()


def run(config: ml_collections.ConfigDict, workdir: str, *, devices=None) -> dict:
  """Trains (or resumes) the experiment in `config`; returns the summary (also summary.json)."""
  validate(config)
  task = get_task(config)
  mesh = sharding.make_mesh(config.mesh, devices)
  sharding.check_batch_size(config.data.batch_size, mesh)
  sharding.check_batch_size(config.data.eval_batch_size, mesh, "data.eval_batch_size")
  step_lib.check_players(task, config.data.batch_size, sharding.data_parallel_size(mesh))
  os.makedirs(workdir, exist_ok=True)
  _save_config(config, workdir)

  train_split = pipeline.load_split(config.data, config.data.train_split)
  eval_split = pipeline.load_split(config.data, config.data.eval_split)
  global_batch = config.data.batch_size
  if config.train.num_steps > 0:
    num_steps = config.train.num_steps
  else:
    num_steps = math.ceil(config.train.num_epochs * len(train_split) / global_batch)
  spec = pipeline.batch_spec(train_split, global_batch)
  _check_inputs(task, spec)
  tx = step_lib.make_tx(task, config.optim, num_steps)

  abstract, state_sh, init_state = step_lib.sharded_state(
      task, tx, jax.random.PRNGKey(config.seed), spec, mesh)
  batch_sh = sharding.batch_sharding(mesh)

  train_it = pipeline.train_iterator(
      train_split, global_batch=global_batch, seed=config.seed,
      process_index=jax.process_index(), process_count=jax.process_count(),
      prefetch=config.data.prefetch, shuffle=config.data.shuffle)
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"),
                                 keep=config.train.keep_checkpoints,
                                 async_save=config.train.async_checkpoints)
  summary_path = os.path.join(workdir, "summary.json")
  start = ckpt.latest_step() or 0
  if start:
    print(f"Resuming from checkpoint {start} in {ckpt.directory}", flush=True)
    state = ckpt.restore(start, abstract, train_it)
  else:
    state = init_state()

  eval_step = step_lib.make_eval_step(task, state_sh, batch_sh)
  if start >= num_steps and os.path.exists(summary_path):
    with open(summary_path) as f:
      summary = json.load(f)
    print(f"{workdir}: already finished ({num_steps} steps); summary: {summary}", flush=True)
    ckpt.close()
    return summary

  t_compile = time.perf_counter()
  batch_abstract = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=batch_sh)
                    for k, v in spec.items()}
  train_step = step_lib.make_train_step(task, tx, state_sh, batch_sh).lower(
      abstract, batch_abstract).compile()
  mem = train_step.memory_analysis()
  print(f"Compiled the train step in {time.perf_counter() - t_compile:.1f}s"
        + (f"; memory per device: arguments {mem.argument_size_in_bytes / 2**20:.1f} MiB, "
           f"temporaries {mem.temp_size_in_bytes / 2**20:.1f} MiB" if mem else ""), flush=True)

  writer = writers.MetricWriter(workdir, resume_step=start)
  best = _BestKeeper(config, workdir, writer.path, start)
  if config.data.tokenizer and jax.process_index() == 0:  # sampling reads it from the workdir
    tokenizers.save(lm.get_tokenizer(config.data), os.path.join(workdir, sample.TOKENIZER_FILE))
  preempt = _Preemption()
  pbar = writers.progress_bar(num_steps, start, config.train.progress_bar)

  def evaluate_all(step: int) -> dict:
    """The task's eval sums over the eval split, then its on_eval metrics (on every host: it
    may run sharded computations)."""
    out = evaluate(eval_step, state, eval_split, mesh, config.data.eval_batch_size,
                   task.finalize)
    if task.on_eval:
      out.update(task.on_eval({"params": state.params, **state.model_state}, step, workdir) or {})
    return out

  window, t_window, t_plot, last_eval = [], time.perf_counter(), time.perf_counter(), {}
  try:
    for step in range(start, num_steps):
      batch = sharding.host_to_global(next(train_it), mesh)
      state, metrics = train_step(state, batch)
      window.append(metrics)
      done = step + 1
      if done % config.train.log_every_steps == 0 or done == num_steps:
        host = jax.device_get(window)
        mean = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
        elapsed = time.perf_counter() - t_window
        mean["examples_per_sec"] = len(window) * global_batch / elapsed
        writer.write(done, "train", mean)
        pbar.set_postfix({**{k: f"{v:.4f}" for k, v in mean.items() if k.endswith("loss")},
                          "ex_per_s": f"{mean['examples_per_sec']:.0f}"})
        window, t_window = [], time.perf_counter()
      if done % config.train.eval_every_steps == 0 or done == num_steps:
        last_eval = evaluate_all(done)
        writer.write(done, config.data.eval_split, last_eval)
        best.update(done, state, last_eval)
        if time.perf_counter() - t_plot > 60:  # plotting costs ~0.5 s; refresh at most a minute
          writer.plot()
          t_plot = time.perf_counter()
        t_window = time.perf_counter()
      if (done % config.train.checkpoint_every_steps == 0 or done == num_steps
          or preempt.requested):
        ckpt.save(done, state, train_it, force=preempt.requested)
      pbar.update(1)
      if preempt.requested:
        ckpt.wait()
        print(f"Preempted: checkpoint {done} saved; rerun the same command to resume.",
              flush=True)
        raise SystemExit(143)
    if not last_eval:  # resumed exactly at the end, killed before the summary was written
      last_eval = evaluate_all(num_steps)
    ckpt.wait()
  finally:
    ckpt.wait()  # an in-flight save completes even when the loop dies
    best.close()
    pbar.close()
    preempt.restore()
    writer.close()
  summary = {"step": num_steps, **{f"{config.data.eval_split}_{k}": v for k, v in last_eval.items()}}
  for metric, pick in (("accuracy", max), (best.metric, min if best.mode == "min" else max)):
    history = [e[metric] for e in writers.read_metrics(writer.path)
               if metric and e["split"] == config.data.eval_split and metric in e]
    if history:  # the peak, to show over-fitting; the final value is the headline
      summary[f"{config.data.eval_split}_{metric}_best"] = pick(history)
  _write_json(summary_path, summary)
  writer.plot()
  ckpt.close()
  return summary
