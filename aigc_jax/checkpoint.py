"""A thin wrapper over orbax's CheckpointManager: the train state plus the data iterator state.

Saves are asynchronous and atomic (orbax writes into a temporary folder and renames it when the
save is complete), so a crash or `kill -9` never leaves a half-written checkpoint as the latest.
"""

import json
import os

import grain
import jax
import orbax.checkpoint as ocp

from aigc_jax.errors import ConfigError


class _IteratorSnapshot:
  """The iterator's state frozen at save time: an async save must not see later batches."""

  def __init__(self, iterator):
    self._state = json.dumps(iterator.get_state()).encode()

  def get_state(self) -> bytes:
    return self._state


class Checkpointer:

  def __init__(self, directory: str, *, keep: int = 2, async_save: bool = True):
    self.directory = os.path.abspath(directory)
    self._mngr = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, enable_async_checkpointing=async_save, create=True,
            cleanup_tmp_directories=True),
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

  def wait(self) -> None:
    self._mngr.wait_until_finished()

  def close(self) -> None:
    self._mngr.close()


BEST = "best"  # DIR/best/<step>/: the checkpoint with the best validation metric so far


def restore_params(workdir: str):
  """Parameters (host numpy arrays) of the best checkpoint in `workdir`, else of the latest."""
  for sub in (BEST, "checkpoints"):
    directory = os.path.join(os.path.abspath(workdir), sub)
    if not os.path.isdir(directory):
      continue
    mngr = ocp.CheckpointManager(directory)
    step = mngr.latest_step()
    if step is None:
      continue
    path = os.path.join(directory, str(step), "state")
    try:
      ckptr = ocp.StandardCheckpointer()
      tree = ckptr.metadata(path).item_metadata.tree
      # Onto this process's first device, whatever mesh the run was trained on.
      device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
      raw = ckptr.restore(path, jax.tree.map(
          lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree,
          is_leaf=lambda m: hasattr(m, "shape")))
    except Exception as e:  # orbax raises many types for unreadable files
      raise ConfigError(f"Checkpoint {directory}/{step} cannot be read ({type(e).__name__}: {e});"
                        " delete it to fall back to an older one.") from e
    return raw["params"]
  raise ConfigError(f"No checkpoint in {workdir} (looked in {BEST}/ and checkpoints/): train "
                    "first, or point --workdir at a training workdir.")
