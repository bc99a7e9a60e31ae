"""The one training loop: mesh -> init or resume -> step -> log -> evaluate -> checkpoint.

`run(config, workdir)` is idempotent: rerunning it on the same workdir resumes from the last
complete checkpoint with the same data order, and a finished run only reports its summary. The
loop knows no task and no option: objectives come in through `tasks.Task`, step options through
their hooks (`options.Active`: before a step, at a log step, in the summary), evaluation through
the evaluators declared in `config.evals`.
"""

import json
import math
import os
import signal
import time

from etils import epath
import jax
import ml_collections
import numpy as np
from absl import logging

from aigc_jax import checkpoint, evaluators, optim, options, sharding, step as step_lib, writers
from aigc_jax.data import pipeline, splits
from aigc_jax.errors import ConfigError, DivergedError
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
  if config.train.nonfinite not in step_lib.NONFINITE:
    raise ConfigError(f"train.nonfinite={config.train.nonfinite!r}; valid: "
                      f"{', '.join(step_lib.NONFINITE)}.")
  if config.train.best_mode not in ("min", "max"):
    raise ConfigError(f"train.best_mode={config.train.best_mode!r}; valid: min, max.")
  pipeline.validate(config.data)
  options.check(config)
  evaluators.validate(config)
  optim.make_optimizer(config.optim, 1)


def _write_json(path: str, obj) -> None:
  if jax.process_index() == 0:
    writers.atomic_write(path, json.dumps(obj, indent=2, sort_keys=True))


def _save_config(config, workdir: str) -> None:
  path = epath.Path(workdir) / "config.json"
  new = json.loads(config.to_json_best_effort())
  if path.exists():
    old = json.loads(path.read_text())
    if old != new:
      logging.warning("Config differs from the one in %s; continuing with the new one.", path)
  _write_json(path, new)


def _check_inputs(task, spec: dict) -> None:
  missing = [k for k in task.input_keys if k not in spec]
  if missing:
    raise ConfigError(f"The task needs batch feature(s) {missing} but the data has "
                      f"{sorted(spec)}; map them with data.preprocess, e.g. rename(image='input')."
                      + (f" {task.input_help}" if task.input_help else ""))


def _stop_if_diverged(config, window: list, done: int, ckpt) -> None:
  """train.nonfinite="stop": the step left the state as it was at the first non-finite loss or
  gradient; stop here, before the next checkpoint, so the last one saved is a good one."""
  if config.train.nonfinite != "stop":
    return
  bad = [i for i, m in enumerate(window) if m.get("nonfinite_step", 0.0) > 0]
  if not bad:
    return
  step = done - len(window) + bad[0] + 1
  m = window[bad[0]]
  values = ", ".join(f"{k}={float(v):.4g}" for k, v in m.items()
                     if k.endswith("loss") or k.endswith("grad_norm"))
  raise DivergedError(
      f"Step {step} gave a non-finite loss or gradient ({values}); its update was not applied "
      f"and training stopped. The last checkpoint ({ckpt.latest_step() or 'none yet'}) is "
      "intact. Lower optim.lr, set optim.grad_clip_norm, check the data for NaNs, or set "
      "train.nonfinite='skip' to skip such steps and go on.")


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


def _history(metrics_path: str, key: str, until: int | None = None) -> list[float]:
  """Values of the evaluation metric `key` ("<evaluator>_<metric>") logged so far."""
  out = []
  for e in writers.read_metrics(metrics_path):
    if e["split"] != "train" and (until is None or e["step"] <= until):
      out.extend(v for k, v in e.items() if f"{e['split']}_{k}" == key)
  return out


class _BestKeeper:
  """The best `train.best_metric` ("<evaluator>_<metric>") so far; with
  train.keep_best_checkpoint, DIR/best/ holds the checkpoint where it was reached."""

  def __init__(self, config, workdir: str, metrics_path: str, start: int):
    t = config.train
    self.metric, self.mode = t.best_metric, t.best_mode
    self.ckpt = checkpoint.Checkpointer(
        os.path.join(workdir, checkpoint.BEST), keep=1, async_save=t.async_checkpoints
    ) if self.metric and t.keep_best_checkpoint else None
    history = _history(metrics_path, self.metric, start) if self.metric else []
    self.best = (min if self.mode == "min" else max)(history) if history else None

  def update(self, step: int, state, metrics: dict, prefix: str) -> None:
    """`metrics`: the flat "<evaluator>_<metric>" values of the evaluators that just ran;
    `prefix`: "<evaluator>_" of the evaluator that reports best_metric."""
    if not self.metric or self.metric not in metrics:
      ran = sorted(k for k in metrics if k.startswith(prefix))
      if self.metric and ran:
        raise ConfigError(f"train.best_metric={self.metric!r} is not among the metrics of its "
                          f"evaluator; valid: {', '.join(ran)}.")
      return
    value = metrics[self.metric]
    if self.best is None or (value < self.best if self.mode == "min" else value > self.best):
      self.best = value
      if self.ckpt and step not in self.ckpt.all_steps():  # a resumed run replays to the same state
        self.ckpt.save(step, state, force=True)

  def close(self) -> None:
    if self.ckpt:
      self.ckpt.wait()
      self.ckpt.close()


def _best_prefix(config, evals: list) -> str:
  """"<evaluator>_" of the evaluator that reports train.best_metric (checked before compiling)."""
  metric = config.train.best_metric
  prefixes = sorted((f"{e.name}_" for e in evals if metric.startswith(f"{e.name}_")), key=len)
  if metric and not prefixes:
    raise ConfigError(f"train.best_metric={metric!r} must be '<evaluator>_<metric>' of an "
                      f"evaluator in config.evals ({', '.join(e.name for e in evals) or 'none'}),"
                      " e.g. 'validation_loss'.")
  if not prefixes:
    return ""
  name = prefixes[-1][:-1]
  split = evaluators.resolve(config.evals[name], config).split
  if splits.is_test(split):
    raise ConfigError(
        f"train.best_metric={metric!r} would choose a checkpoint on the test split ({name!r} "
        f"reads split {split!r}); test results are reported, never chosen on. Declare an "
        f"evaluator on the validation split (e.g. config_lib.add_eval(c, 'validation', "
        f"{config.evals[name].type!r}, split='validation')) and name its metric, or set "
        "train.best_metric=''.")
  return prefixes[-1]


def _training_data(config, task, train_split, active):
  """(iterator, global batch, abstract batch) of the training split, checked against the task;
  an option may replace them (`train_data`)."""
  global_batch = config.data.batch_size
  spec = pipeline.batch_spec(train_split, global_batch)
  _check_inputs(task, spec)
  if task.check_data:
    task.check_data(train_split.load(np.arange(min(len(train_split), 1024))))
  replace = options.first(active, "train_data")
  if replace:
    train_it, global_batch, spec = replace(spec)
  else:
    train_it = pipeline.train_iterator(
        train_split, global_batch=global_batch, seed=config.seed,
        process_index=jax.process_index(), process_count=jax.process_count(),
        prefetch=config.data.prefetch, shuffle=config.data.shuffle)
  return train_it, global_batch, spec


def _num_steps(train_config, split, global_batch: int) -> int:
  if train_config.num_steps > 0:
    return train_config.num_steps
  if getattr(split, "endless", False):
    raise ConfigError("The training data is endless (generated sequences, data.video); set "
                      "train.num_steps instead of train.num_epochs.")
  return math.ceil(train_config.num_epochs * len(split) / global_batch)


def _loaded(task, parts, active) -> dict:
  """{parameter path: arrays} a fresh run starts from: an option's (config.init) and the
  task's own pretrained parts (a latent model's autoencoder)."""
  loaded = options.first(active, "loaded")
  loaded = loaded(parts.abstract_params) if loaded else {}
  if task.pretrained:
    loaded.update(task.pretrained(parts.abstract_params))
  return loaded


def _compile(parts, task, mesh):
  """The compiled step and its FLOPs (XLA's count for one device's share, times the devices)."""
  t = time.perf_counter()
  train_step = parts.lower(task).compile()
  mem = train_step.memory_analysis()
  cost = train_step.cost_analysis() or {}  # XLA:GPU may report none
  print(f"Compiled the train step in {time.perf_counter() - t:.1f}s"
        + (f"; memory per device: arguments {mem.argument_size_in_bytes / 2**20:.1f} MiB, "
           f"temporaries {mem.temp_size_in_bytes / 2**20:.1f} MiB" if mem else ""), flush=True)
  return train_step, float(cost.get("flops", 0.0)) * mesh.devices.size


def _log_train(writer, pbar, window: list, active, done: int, examples: int, t_start: float):
  """The mean of the window's step metrics, the options' log values, the throughput (from
  the window's start to its last step's results on the host: steps are dispatched
  asynchronously, so the clock stops only once they have run)."""
  host = jax.device_get(window)
  mean = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
  mean["examples_per_sec"] = examples / (time.perf_counter() - t_start)
  for a in active:
    if a.log:
      mean.update(a.log(done))
  writer.write(done, "train", mean)
  pbar.set_postfix({**{k: f"{v:.4f}" for k, v in mean.items()
                       if k.endswith("loss") or k == "epsilon"},
                    "ex_per_s": f"{mean['examples_per_sec']:.0f}"})
  return host


def run(config: ml_collections.ConfigDict, workdir: str, *, devices=None) -> dict:
  """Trains (or resumes) the experiment in `config`; returns the summary (also summary.json)."""
  validate(config)
  task = get_task(config)
  mesh = sharding.make_mesh(config.mesh, devices)
  sharding.check_batch_size(config.data.batch_size, mesh)
  step_lib.check_players(task, config.data.batch_size, sharding.data_parallel_size(mesh))
  epath.Path(workdir).mkdir(parents=True, exist_ok=True)
  _save_config(config, workdir)

  split = pipeline.load_train_split(config.data, config.seed)
  active = options.setup(options.Run(config, task, mesh, split, config.data.batch_size))
  train_it, global_batch, spec = _training_data(config, task, split, active)
  num_steps = _num_steps(config.train, split, global_batch)
  parts = step_lib.prepare(config, task, mesh, spec, num_steps, active)
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"),
                                 keep=config.train.keep_checkpoints,
                                 async_save=config.train.async_checkpoints)
  summary_path = epath.Path(workdir) / "summary.json"
  start = ckpt.latest_step() or 0
  if start >= num_steps and summary_path.exists():
    summary = json.loads(summary_path.read_text())
    print(f"{workdir}: already finished ({num_steps} steps); summary: {summary}", flush=True)
    ckpt.close()
    return summary
  if start:
    start, state = ckpt.restore_latest(parts.abstract, train_it)  # a damaged one is moved aside
    print(f"Resuming from checkpoint {start} in {ckpt.directory}", flush=True)
  if not start:
    state = parts.init(_loaded(task, parts, active))

  whole_train = {} if config.data.labels_per_class else {config.data.train_split: split}
  ctx = evaluators.Context(config=config, task=task, mesh=mesh, workdir=workdir,
                           variables_sharding={"params": parts.shardings.params,
                                               **parts.shardings.model_state}, splits=whole_train)
  evals = evaluators.build(config, ctx)
  best_prefix = _best_prefix(config, evals)
  train_step, flops_per_step = _compile(parts, task, mesh)

  writer = writers.MetricWriter(workdir, resume_step=start)
  best = _BestKeeper(config, workdir, writer.path, start)
  if task.save_artifacts and jax.process_index() == 0:
    task.save_artifacts(workdir)
  preempt = _Preemption()
  pbar = writers.progress_bar(num_steps, start, config.train.progress_bar)

  def evaluate(step: int, force: bool = False) -> dict:
    """The evaluators due at `step` (all of them when forced), each logged under its name;
    returns their flat "<evaluator>_<metric>" values. On every host: they may run sharded."""
    variables = {"params": state.params, **state.model_state}
    flat = {}
    for ev in evals:
      if force or ev.due(step, num_steps):
        out = ev.run(variables, step, evaluators.rng_for(config.seed, ev.name, step))
        if out:
          writer.write(step, ev.name, out)
          flat.update({f"{ev.name}_{k}": v for k, v in out.items()})
    return flat

  window, t_window, t_plot, last_eval = [], time.perf_counter(), time.perf_counter(), {}
  try:
    for step in range(start, num_steps):
      for a in active:  # a function of the step, so a resumed run replays it
        if a.before_step:
          state, logged = a.before_step(step, state)
          if logged:
            writer.write(step, a.name, logged)
      state, metrics = train_step(state, sharding.host_to_global(next(train_it), mesh))
      window.append(metrics)
      done = step + 1
      if done % config.train.log_every_steps == 0 or done == num_steps:
        host = _log_train(writer, pbar, window, active, done, len(window) * global_batch,
                          t_window)
        _stop_if_diverged(config, host, done, ckpt)
        window, t_window = [], time.perf_counter()
      if any(ev.due(done, num_steps) for ev in evals):
        results = evaluate(done)
        last_eval.update(results)
        best.update(done, state, results, best_prefix)
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
    if start >= num_steps:  # resumed exactly at the end, killed before the summary was written
      last_eval = evaluate(num_steps, force=True)
    ckpt.wait()
  finally:
    ckpt.wait()  # an in-flight save completes even when the loop dies
    best.close()
    pbar.close()
    preempt.restore()
    writer.close()
  summary = {"step": num_steps, **last_eval,
             "params": float(sum(x.size for x in jax.tree.leaves(parts.abstract_params))),
             "flops_per_step": flops_per_step}
  for a in active:
    if a.summary:
      summary.update(a.summary(state, num_steps))
  if best.metric:  # the peak, to show over-fitting; the final value is the headline
    history = _history(writer.path, best.metric)
    if history:
      summary[f"{best.metric}_best"] = (min if best.mode == "min" else max)(history)
  _write_json(summary_path, summary)
  writer.plot()
  ckpt.close()
  return summary
