import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from aigc_jax import checkpoint, sharding
from aigc_jax.data import pipeline, splits
from aigc_jax.errors import ConfigError


def _iterator():
  split = splits.Records(columns={"x": np.arange(40)}, source=None, fn=None)
  return pipeline.train_iterator(split, global_batch=8, seed=0, process_index=0, process_count=1)


def test_round_trip_of_sharded_state_and_iterator(tmp_path):
  mesh = sharding.make_mesh({"data": 4, "fsdp": 2, "tensor": 1})
  sh = NamedSharding(mesh, P("fsdp", None))
  state = {"w": jax.device_put(jnp.arange(32.0).reshape(8, 4), sh), "step": jnp.int32(7),
           "key": jax.random.PRNGKey(3)}
  it = _iterator()
  for _ in range(3):
    next(it)
  ckpt = checkpoint.Checkpointer(str(tmp_path), keep=2)
  ckpt.save(7, state, it)
  expected_next = next(it)["x"]  # consumed after the save: must not leak into the checkpoint
  ckpt.wait()

  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                          state)
  fresh = _iterator()
  restored = checkpoint.Checkpointer(str(tmp_path)).restore(7, abstract, fresh)
  for k in state:
    np.testing.assert_array_equal(restored[k], state[k])
  assert restored["w"].sharding == sh
  np.testing.assert_array_equal(next(fresh)["x"], expected_next)


def test_keeps_only_the_newest(tmp_path):
  ckpt = checkpoint.Checkpointer(str(tmp_path), keep=2, async_save=False)
  for step in (1, 2, 3):
    ckpt.save(step, {"a": jnp.ones(2) * step})
  assert ckpt.all_steps() == [2, 3] and ckpt.latest_step() == 3


def test_damaged_checkpoint_is_a_clear_error(tmp_path):
  ckpt = checkpoint.Checkpointer(str(tmp_path), async_save=False)
  ckpt.save(5, {"a": jnp.ones(4)})
  shutil.rmtree(os.path.join(str(tmp_path), "5", "state"))
  with pytest.raises(ConfigError, match=r"Checkpoint 5 .* cannot be restored.*delete"):
    ckpt.restore(5, {"a": jax.ShapeDtypeStruct((4,), jnp.float32)})


def test_damaged_latest_checkpoint_falls_back_to_the_previous_and_is_moved_aside(tmp_path):
  d = str(tmp_path / "checkpoints")
  ckpt = checkpoint.Checkpointer(d, keep=3, async_save=False)
  for step in (2, 4):
    ckpt.save(step, {"a": jnp.ones(4) * step})
  # Damage the newest: its array data is gone (a copy cut short, a disk fault).
  for sub in os.listdir(os.path.join(d, "4", "state")):
    if sub.startswith("ocdbt") or sub == "d":
      shutil.rmtree(os.path.join(d, "4", "state", sub))
  abstract = {"a": jax.ShapeDtypeStruct((4,), jnp.float32)}
  step, state = ckpt.restore_latest(abstract)
  assert step == 2 and np.array_equal(state["a"], np.full(4, 2.0))
  assert ckpt.all_steps() == [2]  # the damaged one is no longer a candidate ...
  aside = os.listdir(d + ".damaged")  # ... and is kept, not deleted
  assert len(aside) == 1 and aside[0].startswith("4-")
  # When nothing restores (shapes changed), nothing is moved and the error says so.
  with pytest.raises(ConfigError, match="cannot be restored"):
    ckpt.restore_latest({"a": jax.ShapeDtypeStruct((5,), jnp.float32)})
  assert ckpt.all_steps() == [2]
  assert checkpoint.Checkpointer(str(tmp_path / "empty")).restore_latest(abstract) == (0, None)
