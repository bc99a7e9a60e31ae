import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from aigc_jax import sharding
from aigc_jax.errors import ConfigError


def test_mesh_fills_the_minus_one_axis():
  mesh = sharding.make_mesh({"data": -1, "fsdp": 2, "tensor": 1})
  assert dict(mesh.shape) == {"data": 4, "fsdp": 2, "tensor": 1}
  assert sharding.data_parallel_size(mesh) == 8


@pytest.mark.parametrize("sizes,match", [
    ({"data": -1, "fsdp": -1, "tensor": 1}, "At most one"),
    ({"data": 16, "fsdp": 1, "tensor": 1}, "uses 16 devices but 8"),
    ({"data": -1, "fsdp": 3, "tensor": 1}, "cannot fill 8"),
])
def test_bad_mesh_is_a_clear_error(sizes, match):
  with pytest.raises(ConfigError, match=match):
    sharding.make_mesh(sizes)


def test_explicit_mesh_may_use_fewer_devices():
  mesh = sharding.make_mesh({"data": 1, "fsdp": 1, "tensor": 1})
  assert mesh.devices.size == 1


def test_batch_not_divisible_names_the_fix():
  mesh = sharding.make_mesh({"data": 4, "fsdp": 2, "tensor": 1})
  with pytest.raises(ConfigError, match=r"data.batch_size=100 is not divisible .* multiple of 8"):
    sharding.check_batch_size(100, mesh)
  sharding.check_batch_size(96, mesh)


def test_text_features_stay_on_the_host():
  mesh = sharding.make_mesh({"data": -1, "fsdp": 1, "tensor": 1})
  batch = {"input": np.ones((8, 3), np.float32), "caption": np.array([b"a 3 above a 5"] * 8)}
  out = sharding.host_to_global(batch, mesh)
  assert set(out) == {"input"} and out["input"].shape == (8, 3)


class _Named(nn.Module):

  @nn.compact
  def __call__(self, x):
    x = nn.Dense(256, kernel_init=nn.with_logical_partitioning(
        nn.initializers.lecun_normal(), ("embed", "mlp")))(x)
    x = nn.Dense(10, kernel_init=nn.with_logical_partitioning(
        nn.initializers.lecun_normal(), ("mlp", "classes")))(x)
    return nn.Dense(1000, name="unnamed")(x[..., :6])  # kernel (6, 1000): FSDP fallback


def test_logical_rules_and_fsdp_fallback():
  mesh = sharding.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
  boxed = jax.eval_shape(_Named().init, jax.random.PRNGKey(0), jnp.zeros((4, 64)))
  sh = sharding.tree_shardings(boxed, mesh)["params"]
  assert sh["Dense_0"]["kernel"].spec == P("fsdp", "tensor")
  assert sh["Dense_1"]["kernel"].spec == P("tensor", None)
  # No names: the largest divisible dimension goes to fsdp; small tensors stay replicated.
  assert sh["unnamed"]["kernel"].spec == P(None, "fsdp")
  assert sh["unnamed"]["bias"].spec == P()


def test_indivisible_dimension_is_replicated():
  mesh = sharding.make_mesh({"data": 1, "fsdp": 8, "tensor": 1})
  boxed = jax.eval_shape(_Named().init, jax.random.PRNGKey(0), jnp.zeros((4, 20)))
  sh = sharding.tree_shardings(boxed, mesh)["params"]
  assert sh["Dense_0"]["kernel"].spec[0] is None  # 20 rows do not split 8 ways
