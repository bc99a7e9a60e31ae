"""A thin wrapper over orbax's CheckpointManager: the train state plus the data iterator state.

Saves are asynchronous and atomic (orbax writes into a temporary folder and renames it when the
save is complete), so a crash or `kill -9` never leaves a half-written checkpoint as the latest.
"""

import dataclasses
import json
import os
import time

from etils import epath
import grain
import jax
import ml_collections
import orbax.checkpoint as ocp

from aigc_jax import models, writers
from aigc_jax.errors import ConfigError


class _IteratorSnapshot:
  """The iterator's state frozen at save time: an async save must not see later batches."""

  def __init__(self, iterator):
    self._state = json.dumps(iterator.get_state()).encode()

  def get_state(self) -> bytes:
    return self._state


def _absolute(path: str) -> str:
  """Local paths made absolute (orbax wants them so); cloud paths (gs://...) as they are."""
  return os.path.abspath(path) if writers.is_local(path) else str(path)


_SERIAL = False  # registered once per process


def _serial_saves_on_cpu() -> None:
  """Replica-parallel saving (orbax's default off GPU) splits each replicated array among its
  devices, compiling a slice per array shape and device. One process's CPU devices share one
  host memory and one disk, so there it costs compiles (a fifth of a tiny run's wall time) and
  gains nothing; several processes keep it, to share the writing."""
  global _SERIAL
  if not _SERIAL and jax.process_count() == 1 and jax.devices()[0].platform == "cpu":
    _SERIAL = True
    ocp.type_handlers.register_type_handler(
        jax.Array, ocp.type_handlers.ArrayHandler(use_replica_parallel=False), override=True)


class Checkpointer:

  def __init__(self, directory: str, *, keep: int = 2, async_save: bool = True):
    _serial_saves_on_cpu()
    self.directory = _absolute(directory)
    self._mngr = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, enable_async_checkpointing=async_save, create=True,
            cleanup_tmp_directories=True,
            # Barrier names are per step: the run's managers (checkpoints/, best/) saving the
            # same step at once must not share them, or processes wait on each other for ever.
            multiprocessing_options=ocp.options.MultiprocessingOptions(
                barrier_sync_key_prefix=os.path.basename(self.directory))),
    )

  def latest_step(self) -> int | None:
    return self._mngr.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._mngr.all_steps())

  def save(self, step: int, state, data_iterator=None, *, force: bool = False) -> bool:
    items = {"state": ocp.args.StandardSave(state)}
    if data_iterator is not None:
      items["data"] = grain.checkpoint.CheckpointSave(_IteratorSnapshot(data_iterator))
    return self._mngr.save(step, args=ocp.args.Composite(**items), force=force)

  def restore(self, step: int, abstract_state, data_iterator=None):
    """Restores onto the shardings in `abstract_state`; sets `data_iterator`'s position."""
    items = {"state": ocp.args.StandardRestore(abstract_state)}
    if data_iterator is not None:
      items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
    try:
      return self._mngr.restore(step, args=ocp.args.Composite(**items))["state"]
    except Exception as e:  # orbax raises many types for unreadable or mismatched files
      raise ConfigError(
          f"Checkpoint {step} in {self.directory} cannot be restored: {type(e).__name__}: {e}. "
          f"If it is damaged, delete {os.path.join(self.directory, str(step))} to resume from the "
          "previous checkpoint; if the config changed shapes, use a new --workdir.") from e

  def restore_latest(self, abstract_state, data_iterator=None):
    """(step, state) of the newest checkpoint that restores, or (0, None) when there is none.

    A newer checkpoint that cannot be read while an older one can is damaged (a disk fault, a
    copy cut short): it is moved aside to `<directory>.damaged/` (never deleted) and the run
    resumes from the older one. When none restores (e.g. the config changed shapes), nothing
    is moved and the newest one's error is raised."""
    steps = sorted(self.all_steps(), reverse=True)
    failed = []
    for step in steps:
      try:
        state = self.restore(step, abstract_state, data_iterator)
      except ConfigError as e:
        failed.append((step, e))
        continue
      for bad, err in failed:
        moved = self._move_aside(bad)
        print(f"Checkpoint {bad} cannot be restored ({err.__cause__!r:.200}); moved it to "
              f"{moved} and resumed from checkpoint {step}.", flush=True)
      if failed:
        self._mngr.reload()
      return step, state
    if failed:
      raise failed[0][1]
    return 0, None

  def _move_aside(self, step: int) -> str:
    aside = epath.Path(self.directory + ".damaged") / f"{step}-{time.strftime('%Y%m%d-%H%M%S')}"
    aside.parent.mkdir(parents=True, exist_ok=True)
    epath.Path(self.directory, str(step)).rename(aside)
    return str(aside)

  def wait(self) -> None:
    self._mngr.wait_until_finished()

  def close(self) -> None:
    self._mngr.close()


BEST = "best"  # DIR/best/<step>/: the checkpoint with the best validation metric so far
WHICH = ("best", "latest")


@dataclasses.dataclass
class Trained:
  """A trained workdir: its config and the variables of one checkpoint."""
  workdir: str
  config: ml_collections.ConfigDict
  variables: dict  # {"params": ..., other collections (batch_stats, ema ...)}, host arrays
  step: int
  path: str  # the checkpoint read

  def model(self, **overrides):
    return models.get_model(self.config.model, **overrides)


def _checkpoint_dir(workdir: str, which: str) -> tuple[str, int] | None:
  """(directory, step) of the `which` checkpoint; "best" falls back to the latest when the run
  kept no best checkpoint (train.best_metric unset)."""
  order = (BEST, "checkpoints") if which == "best" else ("checkpoints",)
  for sub in order:
    directory = os.path.join(_absolute(workdir), sub)
    if epath.Path(directory).is_dir():
      step = ocp.CheckpointManager(directory).latest_step()
      if step is not None:
        return directory, step
  return None


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """A training workdir's config.json."""
  if not epath.Path(workdir).is_dir():
    raise ConfigError(f"Workdir {workdir!r} does not exist; train there first (python -m "
                      "aigc_jax.main --config=... --workdir=DIR) or fix the path.")
  path = epath.Path(workdir) / "config.json"
  if not path.exists():
    raise ConfigError(f"{workdir} has no config.json: it is not a training workdir.")
  return ml_collections.ConfigDict(json.loads(path.read_text()))


def load_workdir(workdir: str, which: str = "best") -> Trained:
  """The one way to load a trained workdir (sampling, scoring classifiers, transfer): its
  config.json and the variables of its best checkpoint (else the latest) or latest, restored
  onto this process's first device whatever mesh it was trained on."""
  if which not in WHICH:
    raise ConfigError(f"checkpoint {which!r}; valid: {', '.join(WHICH)}.")
  config = read_config(workdir)
  found = _checkpoint_dir(workdir, which)
  if found is None:
    raise ConfigError(f"No checkpoint in {workdir} (looked in "
                      f"{'best/ and ' if which == 'best' else ''}checkpoints/): train it first, "
                      "or point at a training workdir that has saved one.")
  directory, step = found
  ckpt_path = os.path.join(directory, str(step), "state")
  try:
    ckptr = ocp.StandardCheckpointer()
    tree = ckptr.metadata(ckpt_path).item_metadata.tree
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    raw = ckptr.restore(ckpt_path, jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree,
        is_leaf=lambda m: hasattr(m, "shape")))
  except Exception as e:  # orbax raises many types for unreadable files
    raise ConfigError(f"Checkpoint {directory}/{step} cannot be read ({type(e).__name__}: {e});"
                      " delete it to fall back to an older one.") from e
  variables = {"params": raw["params"], **(raw.get("model_state") or {})}
  return Trained(workdir, config, variables, step, os.path.dirname(ckpt_path))
