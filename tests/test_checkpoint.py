import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from aigc_jax import checkpoint, sharding
from aigc_jax.data import pipeline
from aigc_jax.errors import ConfigError


def _iterator():
  split = pipeline.Split(columns={"x": np.arange(40)}, source=None, fn=None)
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
