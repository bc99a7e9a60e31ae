"""Device mesh, logical axis rules and state/batch shardings.

Layers name their weight dimensions (`nn.with_logical_partitioning`); `LOGICAL_RULES` maps those
names to mesh axes. Weights without names fall back to FSDP on their largest divisible dimension.
Models may also constrain activations by name (`constrain`, "activation_*" names): inside
`activation_constraints(mesh)` (the train step) they take effect, elsewhere they are no-ops.
"""

import contextlib
import math

import flax.linen as nn
import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from aigc_jax.errors import ConfigError

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")  # the batch is split over every data-parallel axis

LOGICAL_RULES = (
    ("batch", BATCH_AXES),
    ("embed", "fsdp"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("kv", None),
    ("vocab", "tensor"),
    ("length", None),
    ("conv_in", None),
    ("conv_out", "tensor"),
    ("classes", None),
    ("layers", None),  # scanned layers' stacked parameters (gpt scan_layers)
    # Activations have names of their own. Unconstrained, they inherit the weights' embed -> fsdp
    # rule, which fights the batch's use of the fsdp axis: XLA then replicates work instead of
    # gathering weights (GPT-2 124M on v5e-8 under FSDP: 2x FLOPs per chip, 1.6x temporaries).
    ("activation_batch", BATCH_AXES),
    ("activation_length", None),
    ("activation_embed", "tensor"),
    ("activation_heads", "tensor"),
    ("activation_kv", None),
    ("activation_mlp", "tensor"),
    ("activation_vocab", "tensor"),
)

# Below this many elements a weight is replicated: sharding it saves nothing and costs collectives.
MIN_FSDP_SIZE = 2**10


def mesh_shape(mesh_config, num_devices: int) -> dict[str, int]:
  """Fills the one -1 axis; checks the product equals the device count."""
  sizes = {a: int(mesh_config[a]) for a in MESH_AXES}
  unknown = [a for a, s in sizes.items() if s == -1]
  if len(unknown) > 1:
    raise ConfigError(f"At most one mesh axis may be -1, got {sizes}.")
  if any(s == 0 or s < -1 for s in sizes.values()):
    raise ConfigError(f"Mesh axis sizes must be positive or -1, got {sizes}.")
  known = math.prod(s for s in sizes.values() if s != -1)
  if unknown:
    if num_devices % known:
      raise ConfigError(f"Mesh {sizes} cannot fill {num_devices} devices: {known} does not divide it.")
    sizes[unknown[0]] = num_devices // known
  if math.prod(sizes.values()) > num_devices or (unknown and math.prod(sizes.values()) != num_devices):
    raise ConfigError(
        f"Mesh {sizes} uses {math.prod(sizes.values())} devices but {num_devices} are available; "
        "set one axis to -1 (e.g. --config.mesh.data=-1).")
  return sizes


def make_mesh(mesh_config, devices=None) -> Mesh:
  """A mesh over `devices` (default: all). Fully explicit sizes may use fewer devices: tiny
  models (e.g. `mesh.data=1`) run fastest on one."""
  devices = jax.devices() if devices is None else list(devices)
  sizes = mesh_shape(mesh_config, len(devices))
  shape = tuple(sizes[a] for a in MESH_AXES)
  if math.prod(shape) < len(devices) and jax.process_count() > 1:
    raise ConfigError(f"Mesh {sizes} must use all {len(devices)} devices on multiple hosts.")
  devices = devices[:math.prod(shape)]
  # Auto axes: linen's logical constraints assert under Explicit axes.
  types = (jax.sharding.AxisType.Auto,) * len(shape)
  try:
    return jax.make_mesh(shape, MESH_AXES, axis_types=types, devices=devices)
  except NotImplementedError:  # an axis no product of torus sides (8 x 8 on v5p's 4x4x4)
    grid = mesh_utils.create_device_mesh(shape, devices, allow_split_physical_axes=True)
    return Mesh(grid, MESH_AXES, axis_types=types)


@contextlib.contextmanager
def activation_constraints(mesh: Mesh):
  """While tracing a jitted function: models' activation constraints (`constrain`) apply on
  `mesh`. The rules are not made global: flax would then also constrain the reshaped kernels
  it builds to check DenseGeneral's parameter shapes, with the kernel's names and wrong rank."""
  with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
    yield


def constrain(x, names):
  """nn.with_logical_constraint, leaving unconstrained a dimension its mesh axes do not divide
  (25 heads over 2 tensor devices): the weights' `_divisible` replicates it too."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty:  # outside activation_constraints (sampling, evaluation): a no-op
    return x
  kept = _divisible(nn.logical_to_mesh_axes(names, LOGICAL_RULES), x.shape, mesh)
  return nn.with_logical_constraint(
      x, tuple(n if k is not None else None for n, k in zip(names, kept)), rules=LOGICAL_RULES)


def data_parallel_size(mesh: Mesh) -> int:
  return math.prod(mesh.shape[a] for a in BATCH_AXES)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(BATCH_AXES))


def check_batch_size(global_batch: int, mesh: Mesh, what: str = "data.batch_size") -> None:
  dp = data_parallel_size(mesh)
  procs = jax.process_count()
  if global_batch % dp or global_batch % procs:
    raise ConfigError(
        f"{what}={global_batch} is not divisible by the data-parallel size {dp} "
        f"(mesh data x fsdp = {mesh.shape['data']} x {mesh.shape['fsdp']}) and process count "
        f"{procs}; pick a multiple of {math.lcm(dp, procs)}.")


def _fsdp_fallback(shape, mesh: Mesh) -> P:
  n = mesh.shape["fsdp"]
  if n == 1 or math.prod(shape) < MIN_FSDP_SIZE:
    return P()
  for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):
    if shape[dim] % n == 0:
      spec = [None] * len(shape)
      spec[dim] = "fsdp"
      return P(*spec)
  return P()


def _divisible(spec: P, shape, mesh: Mesh) -> P:
  """Replicates any dimension its mesh axes do not divide (e.g. 10 classes over 4 devices)."""
  out = []
  for dim, axes in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec))):
    names = (axes,) if isinstance(axes, str) else (axes or ())
    out.append(axes if dim % math.prod(mesh.shape[a] for a in names) == 0 else None)
  return P(*out)


def _is_box(x) -> bool:
  return isinstance(x, nn.LogicallyPartitioned)


def tree_shardings(abstract_tree, mesh: Mesh, rules=LOGICAL_RULES):
  """Shardings for a (possibly boxed) abstract tree; the result matches the unboxed tree."""

  def leaf(x):
    if _is_box(x) and not hasattr(x.value, "shape"):
      return x.value  # an empty placeholder (optax's MaskedNode in a partitioned optimiser)
    if _is_box(x):
      spec = nn.logical_to_mesh_axes(x.names, rules)
      return NamedSharding(mesh, _divisible(spec, np.shape(x.value), mesh))
    return NamedSharding(mesh, _fsdp_fallback(np.shape(x), mesh))

  return jax.tree.map(leaf, abstract_tree, is_leaf=_is_box)


def host_to_global(local_batch: dict, mesh: Mesh):
  """Per-host numpy batch -> global jax arrays split over the batch axes of the mesh. Text
  features (raw captions a task does not read) stay on the host: a device holds numbers."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, x)
          for k, x in local_batch.items() if numeric(x)}


def numeric(x) -> bool:
  return np.asarray(x).dtype.kind in "biuf"
