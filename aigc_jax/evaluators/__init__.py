"""Evaluators declared in the config, big_vision style, each found by its type.

  config.evals.probe = evaluators.spec("linear_probe", every_steps=1000, fn="encode")

An evaluator type is a module here with `DEFAULTS` (its own keys) and
`make(name, ec, ctx) -> run(variables, step, rng) -> metrics dict`; it may define
`check(name, ec, config)` for errors that need no data. It reaches the task only through
`task.eval_fns` (`ctx.fn(...)`). Every evaluator shares the keys of `COMMON`; its metrics are
logged as `{"split": name, ...}` in metrics.jsonl, as `name/metric` in TensorBoard and as
`name_metric` in summary.json. Modules without `make` (grid, probe_lib ...) are libraries.
"""

import dataclasses
import functools
import importlib
import zlib

import jax
import ml_collections
import numpy as np

from aigc_jax import registry, sharding
from aigc_jax.options import augment as augment_lib
from aigc_jax.data import pipeline
from aigc_jax.data.splits import Split
from aigc_jax.errors import ConfigError

COMMON = {
    "type": "",
    # Runs every this many steps; 0: train.eval_every_steps; -1: only after the last step.
    # Every evaluator also runs after the last step.
    "every_steps": 0,
    "split": "",  # the data split it reads; "": data.eval_split
    "batch_size": 0,  # global evaluation batch; 0: data.eval_batch_size
}


def _module(type_: str):
  if "." in type_:  # an evaluator module of one's own project
    return registry.import_member("aigc_jax.evaluators", type_, "evaluator type")
  names = types()
  if type_ not in names:
    raise ConfigError(f"Unknown evaluator type {type_!r}. Valid types: {', '.join(names)}.")
  return registry.import_member("aigc_jax.evaluators", type_, "evaluator type")


@functools.cache
def types() -> list[str]:
  """Modules of this package that define an evaluator (have `make`)."""
  return [n for n in registry.available("aigc_jax.evaluators")
          if hasattr(importlib.import_module(f"aigc_jax.evaluators.{n}"), "make")]


def spec(type_: str, **kw) -> ml_collections.ConfigDict:
  """An evaluator's full config (COMMON + the type's DEFAULTS + kw), so every key can be
  overridden from the command line and appears in config.json."""
  module = _module(type_)
  c = {**COMMON, **module.DEFAULTS, "type": type_}
  unknown = sorted(set(kw) - set(c))
  if unknown:
    raise ConfigError(f"Evaluator type {type_!r} has no key(s) {unknown}; valid: {sorted(c)}.")
  c.update(kw)
  return ml_collections.ConfigDict(c)


def validate(config) -> None:
  """Types, keys and data-free checks of every declared evaluator (before any data is read)."""
  for name, ec in config.evals.items():
    if "type" not in ec:
      raise ConfigError(f"config.evals.{name} has no 'type'; valid types: {', '.join(types())}.")
    module = _module(ec.type)
    valid = set(COMMON) | set(module.DEFAULTS)
    unknown = sorted(set(ec) - valid)
    if unknown:
      raise ConfigError(f"config.evals.{name} (type {ec.type!r}) has unknown key(s) {unknown}; "
                        f"valid: {sorted(valid)}.")
    if ec.every_steps < -1:
      raise ConfigError(f"config.evals.{name}.every_steps={ec.every_steps}; use a positive "
                        "number, 0 (train.eval_every_steps) or -1 (only at the end).")
    if "augment" in ec:
      augment_lib.parse(ec.augment)
    if hasattr(module, "check"):
      module.check(name, resolve(ec, config), config)


def resolve(ec, config) -> ml_collections.ConfigDict:
  """Fills the shared defaults (split, batch size) from the data config."""
  ec = ec.copy_and_resolve_references()
  with ec.unlocked():
    ec.split = ec.split or config.data.eval_split
    ec.batch_size = ec.batch_size or config.data.eval_batch_size
  return ec


@dataclasses.dataclass
class Context:
  """What an evaluator may use: the config, the task's eval_fns, the mesh and data."""
  config: ml_collections.ConfigDict
  task: object
  mesh: jax.sharding.Mesh
  workdir: str
  variables_sharding: object  # of {"params": ..., **model_state}
  # Splits already loaded, by name (the loop passes the training split: read once, not twice).
  splits: dict = dataclasses.field(default_factory=dict)

  @property
  def batch_sharding(self):
    return sharding.batch_sharding(self.mesh)

  def fn(self, name: str, evaluator: str):
    """The task's eval function `name`, or an error saying which task lacks it."""
    fns = self.task.eval_fns
    if name not in fns:
      raise ConfigError(f"Evaluator {evaluator!r} needs the task's {name!r} function, but task "
                        f"{self.config.task!r} provides {sorted(fns)}; remove the evaluator from "
                        "config.evals or pick one that fits the task.")
    return fns[name]

  def split(self, name: str) -> Split:
    """A whole data split (preprocessed), loaded once per run."""
    if name not in self.splits:
      self.splits[name] = pipeline.load_split(self.config.data, name)
    return self.splits[name]

  def require_labels(self, split: str, evaluator: str) -> None:
    if "label" not in self.split(split).example_spec():
      raise ConfigError(f"Evaluator {evaluator!r} needs labels but split {split!r} of "
                        f"{self.config.data.name!r} has only {sorted(self.split(split).example_spec())}"
                        "; use a labelled split or rename its label feature to 'label' in "
                        "data.preprocess.")

  def batches(self, split: str, global_batch: int, augment: str = ""):
    """Every example of `split` once as global batches (padding masked by "mask"), over hosts.
    `augment` ops are applied with a fixed key per batch index, so every evaluation sees the
    same augmented split (e.g. a test set binarised once)."""
    aug = _jitted_augment(augment) if augment else None
    local = global_batch // jax.process_count()
    for i, batch in enumerate(pipeline.eval_batches(
        self.split(split), local_batch=local, process_index=jax.process_index(),
        process_count=jax.process_count())):
      batch = sharding.host_to_global(batch, self.mesh)
      if aug is not None:
        batch = aug(jax.random.fold_in(jax.random.PRNGKey(AUGMENT_SEED), i), batch)
      yield batch


AUGMENT_SEED = 20_240_501  # evaluation-time augmentation: one fixed draw per batch index


@functools.cache
def _jitted_augment(spec_: str):
  return jax.jit(augment_lib.parse(spec_))


@dataclasses.dataclass
class Evaluator:
  name: str
  every_steps: int  # -1: only after the last step
  run: object  # run(variables, step, rng) -> dict

  def due(self, step: int, num_steps: int) -> bool:
    return step == num_steps or (self.every_steps > 0 and step % self.every_steps == 0)


def build(config, ctx: Context) -> list[Evaluator]:
  """Every evaluator in config.evals, built (data loaded, fns checked) before compiling."""
  out = []
  for name in sorted(config.evals):
    ec = resolve(config.evals[name], config)
    sharding.check_batch_size(ec.batch_size, ctx.mesh, f"evals.{name}.batch_size (or "
                              "data.eval_batch_size)")
    run = _module(ec.type).make(name, ec, ctx)
    every = ec.every_steps or config.train.eval_every_steps
    out.append(Evaluator(name, every, run))
  return out


def rng_for(seed: int, name: str, step: int):
  """A key per (run, evaluator, step): stochastic bounds differ across evaluations but replay
  exactly on resume."""
  key = jax.random.fold_in(jax.random.PRNGKey(seed), zlib.crc32(name.encode()) & 0x7FFFFFFF)
  return jax.random.fold_in(key, step)


def host_features(jitted, variables, batches, key="input"):
  """Concatenated host arrays of jitted(variables, batch[key]) over masked batches, with the
  labels (if any) and padding dropped; a helper for feature-based evaluators."""
  feats, labels = [], []
  for batch in batches:
    mask = to_host(batch["mask"]).astype(bool)
    feats.append(to_host(jitted(variables, batch[key]))[mask])
    if "label" in batch:
      labels.append(to_host(batch["label"])[mask])
  return np.concatenate(feats), (np.concatenate(labels) if labels else None)


def to_host(x) -> np.ndarray:
  """A global array as one host numpy array on every process (gathered across hosts)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(jax.device_get(x))
