"""Options of the one train step and the one loop; each module here owns one of them.

An option module may define (every name is optional):
  DEFAULTS                       {config key: default}: the top-level config keys it owns; the base
                                 config (aigc_jax/config.py) adds them, so each is defined once
  check(config)                  errors that need no data, before anything is read or compiled
  configure_task(config) -> config   the config the task and model are built from (precision
                                 gives the model its compute dtype, qat its quantisation)
  wrap_task(task, config) -> task    the task as the step and evaluators see it (precision)
  setup(config, run) -> Active | None   what it does in this run (`run` is a `Run`); None: off

The trainer loops over the active options the way nanodo loops over its hooks and names none of
them. `config.options` lists the option modules of a run: the built-in ones by name, others by
dotted module path ("my_project.my_option"), so an option lives in one file.
"""

import dataclasses
from typing import Any, Callable

import jax

from aigc_jax import registry
from aigc_jax.errors import ConfigError

# Applied in this order: the batch transforms of earlier options run first.
BUILTIN = ("precision", "qat", "init", "augment", "privacy", "pruning", "federated")


@dataclasses.dataclass
class Run:
  """What an option may read when it is set up (after the data, before the state exists)."""
  config: Any
  task: Any
  mesh: Any
  train_split: Any  # None for ahead-of-time compiles, which read no data
  global_batch: int


@dataclasses.dataclass
class Active:
  """What one option changes; every field is optional. Hooks run in `config.options` order."""
  name: str  # its metrics are logged under this name; its summary keys are its own
  # The data: train_data(batch spec) -> (iterator, global batch, batch spec) replaces the
  # training iterator; model_spec(spec) -> the batch spec the model is built for.
  train_data: Callable | None = None
  model_spec: Callable | None = None
  # The state: (abstract params) -> a bool per parameter. `frozen` parameters get no update
  # and no optimiser state; `masks` puts a mask per weight into the state (TrainState.masks).
  frozen: Callable | None = None
  masks: Callable | None = None
  # (abstract unboxed params) -> {path: host arrays} that replace fresh parameters at init.
  loaded: Callable | None = None
  # (abstract state) -> None: refuses a state the option cannot honour, before compiling.
  check_state: Callable | None = None
  # In the step: batch(key, batch) -> batch on the device with the step's key; gradient(task,
  # state, batch, rng, micro_batches) -> (loss, metrics, model state, grads) replaces the
  # gradient (one option at most); grads(state, grads) and params(state, params) transform the
  # gradient before the optimiser and the parameters after it.
  batch: Callable | None = None
  gradient: Callable | None = None
  grads: Callable | None = None
  params: Callable | None = None
  # In the loop: before_step(step, state) -> (state, metrics or None), before each step;
  # log(done) -> metrics added to the training log; summary(state, num_steps) -> summary keys.
  before_step: Callable | None = None
  log: Callable | None = None
  summary: Callable | None = None


def module(name: str):
  """An option module: a built-in name or a dotted module path."""
  return registry.import_member("aigc_jax.options", name, "option")


def modules(config) -> list:
  return [module(n) for n in config.get("options", BUILTIN)]


def defaults(names=BUILTIN) -> dict:
  """The config keys the options own, with their defaults (for the base config)."""
  out = {}
  for name in names:
    for k, v in getattr(module(name), "DEFAULTS", {}).items():
      if k in out:
        raise ValueError(f"Option {name!r} redefines config key {k!r}.")
      out[k] = v
  return out


def check(config) -> None:
  for m in modules(config):
    if hasattr(m, "check"):
      m.check(config)


def configure_task(config):
  for m in modules(config):
    if hasattr(m, "configure_task"):
      config = m.configure_task(config)
  return config


def wrap_task(task, config):
  for m in modules(config):
    if hasattr(m, "wrap_task"):
      task = m.wrap_task(task, config)
  return task


SINGLE = ("train_data", "gradient", "frozen", "masks", "loaded")  # one owner at most


def setup(run: Run) -> list[Active]:
  """The active options of this run, in config order; each field of `SINGLE` has one owner
  at most (two options replacing the gradient cannot both be honoured)."""
  active = [a for m in modules(run.config) if hasattr(m, "setup")
            for a in [m.setup(run.config, run)] if a is not None]
  for field in SINGLE:
    owners = [a.name for a in active if getattr(a, field) is not None]
    if len(owners) > 1:
      raise ConfigError(f"Options {owners} both replace the {field.replace('_', ' ')}; turn "
                        "one of them off.")
  return active


def combined(active: list[Active], field: str) -> Callable | None:
  """The `field` hooks of all active options composed in order: f(x, ...) -> x; None if none.
  Batch hooks take (key, batch): each gets its own key, folded with its position."""
  fns = [getattr(a, field) for a in active if getattr(a, field) is not None]
  if not fns:
    return None
  if field == "batch":
    def batch(key, b):
      for i, f in enumerate(fns):
        b = f(key if i == 0 else jax.random.fold_in(key, i), b)
      return b
    return batch

  def chain(state, x):
    for f in fns:
      x = f(state, x)
    return x
  return chain


def first(active: list[Active], field: str):
  """The `field` of its one owner (see `SINGLE`), or None."""
  return next((getattr(a, field) for a in active if getattr(a, field) is not None), None)
