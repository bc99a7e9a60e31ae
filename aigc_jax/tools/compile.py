r"""Ahead-of-time compilation of the train step for a TPU topology this machine does not have.

  python -m aigc_jax.tools.compile --config=experiments/gpt_sizes.py:124m --topology=v5e-256 \
      [--config.mesh.fsdp=-1 --config.mesh.data=1 ...] [--json_out=FILE]

libtpu (`pip install -e ".[tpu]"`) describes the topology's chips without any being present; the
mesh is built on those abstract devices and the project's own train step (task, optimiser,
sharded state, donation: `step.prepare`, as training builds it) is lowered with abstract
arguments and compiled by XLA:TPU. No data is read: the task makes its batch spec from the
config (`make_without_data` in its module). Printed per chip: parameter and optimiser-state
bytes, temporaries, the total against the chip's HBM, FLOPs per step from the compiler's cost
analysis against 6 x parameters x tokens, and a roofline step time (the larger of FLOPs / peak
and bytes accessed / HBM bandwidth) with the tokens/s and MFU it implies. These are compiler
estimates: the roofline ignores collectives' latency and overlap, so the MFU is an upper bound.
A step that does not fit in HBM is an error naming the levers.

Topologies: v5e-N and v6e-N count chips, v4-N and v5p-N count TensorCores (2 per chip), as Cloud
TPU names slices; or libtpu's own "v5e:16x16", "v5p:4x4x4". `h100-N` (N NVIDIA H100 SXM, 8 a
host) compiles with XLA:GPU from a description of the GPU, no GPU needed (`pip install -e
".[gpu_aot]"`); XLA:GPU reports no cost analysis, so its roofline uses 6 x parameters x tokens.
"""

import os

if __name__ == "__main__":  # XLA:TPU (or GPU) compiles here; jax itself must seek no accelerator
  os.environ.setdefault("JAX_PLATFORMS", "cpu")

# pylint: disable=wrong-import-position
import dataclasses  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
from absl import app, flags  # noqa: E402
from jax.experimental import topologies  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from aigc_jax import main, options, registry, sharding, step as step_lib, tasks  # noqa: E402
from aigc_jax.errors import ConfigError  # noqa: E402

FLAGS = flags.FLAGS
GiB = 2**30


@dataclasses.dataclass(frozen=True)
class Chip:
  peak_flops: float  # dense bf16 FLOP/s
  hbm_bytes: int
  hbm_bandwidth: float  # bytes/s
  cores: int  # TensorCores per chip: Cloud TPU's v4-N / v5p-N names count cores
  dims: int  # torus dimensions of libtpu's topology names
  platform: str = "tpu"


# Published per-chip figures: cloud.google.com/tpu/docs/v4 (275 TFLOP/s, 32 GiB, 1,200 GB/s),
# .../v5e (197 TFLOP/s, 16 GiB, 819 GB/s), .../v5p (459 TFLOP/s, 95 GiB, 2,765 GB/s) and
# .../v6e (918 TFLOP/s, 32 GiB, 1,640 GB/s), "System architecture" tables.
CHIPS = {
    "v4": Chip(275e12, 32 * GiB, 1200e9, cores=2, dims=3),
    "v5e": Chip(197e12, 16 * GiB, 819e9, cores=1, dims=2),
    "v5p": Chip(459e12, 95 * GiB, 2765e9, cores=2, dims=3),
    "v6e": Chip(918e12, 32 * GiB, 1640e9, cores=1, dims=2),
    # nvidia.com/en-us/data-center/h100 (SXM: 989 TFLOP/s dense bf16, 80 GB HBM3, 3.35 TB/s);
    # the memory is what CUDA reports, as in H100_TARGET.
    "h100": Chip(989e12, 84929347584, 3.35e12, cores=1, dims=0, platform="cuda"),
}

# What XLA:GPU compiles for without a GPU: the device as CUDA describes an H100 SXM (XLA's
# GpuTargetConfig proto; the fields of xla/tools/hlo_opt/gpu_specs), CUDA 12.8 and cuDNN 9.8.
H100_TARGET = """
gpu_device_info {
  threads_per_block_limit: 1024 threads_per_warp: 32 shared_memory_per_block: 49152
  shared_memory_per_core: 233472 threads_per_core_limit: 2048 core_count: 132
  fpus_per_core: 128 block_dim_limit_x: 2147483647 block_dim_limit_y: 65535
  block_dim_limit_z: 65535 memory_bandwidth: 3352320000000 l2_cache_size: 52428800
  clock_rate_ghz: 1.98 device_memory_size: 84929347584 shared_memory_per_block_optin: 232448
  cuda_compute_capability { major: 9 } registers_per_core_limit: 65536
  registers_per_block_limit: 65536
}
platform_name: "CUDA"
dnn_version_info { major: 9 minor: 8 }
runtime_version { major: 12 minor: 8 }
device_description_str: "NVIDIA H100 80GB HBM3"
"""


def _torus(chips: int, dims: int) -> list[int]:
  """Cloud TPU's slice shapes: double the last of the shortest sides (v5e-8 is 2x4, v5e-256 16x16,
  v5p-128 = 64 chips 4x4x4); 3-D slices start from a 2x2x1 host."""
  shape = [2, 2, 1] if dims == 3 and chips >= 4 else [1] * dims
  while math.prod(shape) < chips:
    i = max(j for j in range(dims) if shape[j] == min(shape))
    shape[i] *= 2
  return shape


def parse_topology(name: str) -> tuple[str, str, tuple[int, int, int] | None]:
  """'v5e-256' or 'v5e:16x16' -> (chip generation, libtpu topology name, chips-per-host bounds);
  'h100-16' -> ('h100', XLA:GPU's '1x2x8', None)."""
  gen, sep, rest = name.partition(":") if ":" in name else name.partition("-")
  valid = f"valid: {', '.join(f'{g}-N' for g in CHIPS)} or e.g. v5e:2x4, v5p:4x4x4"
  if gen not in CHIPS or not sep:
    raise ConfigError(f"Unknown topology {name!r}; {valid}.")
  chip = CHIPS[gen]
  if chip.platform == "cuda":  # N GPUs, 8 a host
    if sep != "-" or not rest.isdigit() or int(rest) < 1 or (int(rest) > 8 and int(rest) % 8):
      raise ConfigError(f"Cannot read topology {name!r}: {gen}-N takes N GPUs, at most 8 or a "
                        "multiple of 8 (8 a host).")
    n = int(rest)
    return gen, f"1x{max(n // 8, 1)}x{min(n, 8)}", None
  try:
    if sep == ":":
      shape = [int(s) for s in rest.split("x")]
    else:
      count = int(rest)
      if count % chip.cores or (count // chip.cores) & (count // chip.cores - 1):
        raise ValueError
      shape = _torus(count // chip.cores, chip.dims)
  except ValueError:
    raise ConfigError(f"Cannot read topology {name!r}: {gen}-N takes a power of two "
                      f"{'TensorCores (2 per chip)' if chip.cores == 2 else 'chips'}; "
                      f"{valid}.") from None
  if len(shape) != chip.dims or min(shape) < 1:
    raise ConfigError(f"Topology {name!r}: {gen} slices are {chip.dims}-D, e.g. "
                      f"{gen}:{'x'.join(['2'] * chip.dims)}.")
  bounds = (min(shape[0], 2), min(shape[1], 2) if len(shape) > 1 else 1, 1)
  return gen, f"{gen}:{'x'.join(map(str, shape))}", bounds


def has_cuda_plugin() -> bool:
  try:
    return importlib.util.find_spec("jax_plugins.xla_cuda12") is not None
  except ModuleNotFoundError:  # no jax_plugins package at all
    return False


def topology_devices(name: str):
  """(chip generation, abstract devices of the named TPU slice or GPUs) from libtpu or XLA:GPU."""
  gen, topology, bounds = parse_topology(name)
  if CHIPS[gen].platform == "cuda":
    if not has_cuda_plugin():
      raise ConfigError("Compiling for NVIDIA GPUs needs jax's CUDA plugin (no GPU or CUDA "
                        'libraries needed): pip install -e ".[gpu_aot]".')
    desc = topologies.get_topology_desc(platform="cuda", target_config=H100_TARGET,
                                        topology=topology)
    return gen, list(desc.devices)
  if importlib.util.find_spec("libtpu") is None:
    raise ConfigError("Compiling for TPU needs libtpu, which is not installed: "
                      'pip install -e ".[tpu]" (the version jax[tpu] pins for this jax).')
  # Only compiling, no TPU is opened: let compiles run side by side (libtpu's lock file is for
  # processes that own the chips).
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  desc = topologies.get_topology_desc(platform="tpu", topology_name=topology,
                                      chip_config_name="default", chips_per_host_bounds=bounds,
                                      num_slices=1)
  return gen, list(desc.devices)


def _bytes_per_chip(tree) -> int:
  """Bytes of one device's shards of an abstract tree with shardings."""
  return sum(math.prod(x.sharding.shard_shape(x.shape)) * x.dtype.itemsize
             for x in jax.tree.leaves(tree))


def _levers(config, problem: str) -> str:
  fsdp = config.mesh.fsdp
  fsdp = "already -1: every chip the other axes leave" if fsdp == -1 else f"now {fsdp}; -1: all"
  return (f"{problem} Levers: shard parameters and optimiser state over more "
          f"chips (a larger --config.mesh.fsdp, {fsdp}), recompute "
          f"activations in the backward pass (--config.model.remat=full), fewer examples per chip "
          f"(a smaller --config.data.batch_size, now {config.data.batch_size}, or a larger "
          f"slice), or tensor parallelism for wide layers (--config.mesh.tensor=2, 4 or 8).")


def _replicated(share: float, ideal: float) -> str:
  return (f"Each chip holds {100 * share:.0f}% of the parameters and optimiser state, not "
          f"{100 * ideal:.1f}%: weights whose dimensions the fsdp (tensor) size does not divide "
          "are replicated; pick sizes that divide the model's width (and heads).")


def _oom(e: Exception) -> bool:
  text = str(e)
  return "RESOURCE_EXHAUSTED" in text or "Ran out of memory" in text


def compile_report(config, topology: str) -> dict:
  """Compiles the train step of `config` for `topology`; returns the per-chip figures (see
  check_fits). Raises ConfigError when XLA finds that it cannot fit in HBM."""
  gen, devices = topology_devices(topology)
  chip = CHIPS[gen]
  task, spec = tasks.get_task(config, without_data=True)
  mesh = sharding.make_mesh(config.mesh, devices)
  if mesh.devices.size != len(devices):
    raise ConfigError(f"Mesh {dict(mesh.shape)} uses {mesh.devices.size} of the {len(devices)} "
                      f"chips of {topology}; set one axis to -1 (e.g. --config.mesh.data=-1).")
  sharding.check_batch_size(config.data.batch_size, mesh)
  step_lib.check_players(task, config.data.batch_size, sharding.data_parallel_size(mesh))
  active = options.setup(options.Run(config, task, mesh, None, config.data.batch_size))
  parts = step_lib.prepare(config, task, mesh, spec, max(config.train.num_steps, 1), active)
  state = _bytes_per_chip(parts.abstract.params) + _bytes_per_chip(parts.abstract.opt_state)
  whole = sum(math.prod(x.shape) * x.dtype.itemsize
              for x in jax.tree.leaves((parts.abstract.params, parts.abstract.opt_state)))
  ideal = 1 / (mesh.shape["fsdp"] * mesh.shape["tensor"])
  t = time.perf_counter()
  lowered = parts.lower(task)
  try:
    compiled = lowered.compile()
  except Exception as e:  # XLA:TPU refuses a program that cannot fit in HBM
    if _oom(e):
      raise ConfigError(_levers(config, f"The train step does not fit in a {gen} chip's "
                                f"{chip.hbm_bytes / GiB:.0f} GiB of HBM (XLA: "
                                f"{str(e).splitlines()[0][:300]}).")
                        + (" " + _replicated(state / whole, ideal) if state / whole > 1.5 * ideal
                           else "")) from None
    raise
  compile_s = time.perf_counter() - t  # lowering included

  mem = compiled.memory_analysis()
  cost = compiled.cost_analysis() or {}  # XLA:GPU reports none
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  chips = len(devices)
  n_params = sum(math.prod(x.shape) for x in jax.tree.leaves(parts.abstract.params))
  x = spec["input"]
  tokens = math.prod(x.shape[:2]) if x.ndim == 2 else x.shape[0]
  total = (mem.argument_size_in_bytes + mem.output_size_in_bytes - mem.alias_size_in_bytes
           + mem.temp_size_in_bytes + mem.generated_code_size_in_bytes)
  flops = float(cost["flops"]) if "flops" in cost else None
  bytes_accessed = float(cost["bytes accessed"]) if "bytes accessed" in cost else None
  model_flops = 6 * n_params * tokens / chips
  analytic = getattr(registry.import_member("aigc_jax.models", config.model.name, "model"),
                     "train_flops_per_example", None)
  if analytic is not None:  # e.g. DiT: its adaLN weights act once per image, not per token
    model_flops = analytic(config.model) * x.shape[0] / chips
  # 6ND is a floor: XLA counts FSDP's windowed weight-gradient convolutions low (~15% over 8 chips).
  step_s = max(max(flops or 0.0, model_flops) / chip.peak_flops,
               (bytes_accessed or 0.0) / chip.hbm_bandwidth)
  report = {
      "topology": topology, "chip": gen, "chips": chips, "mesh": dict(mesh.shape),
      "parameters": n_params,
      "global_batch": int(x.shape[0]), "tokens_per_step": tokens,
      "param_bytes": _bytes_per_chip(parts.abstract.params),
      "opt_state_bytes": _bytes_per_chip(parts.abstract.opt_state),
      "argument_bytes": mem.argument_size_in_bytes, "temp_bytes": mem.temp_size_in_bytes,
      "total_bytes": total, "hbm_bytes": chip.hbm_bytes, "fits": total <= chip.hbm_bytes,
      "flops": flops, "model_flops": model_flops, "bytes_accessed": bytes_accessed,
      "model_flops_source": "6ND" if analytic is None else "analytic",
      "roofline_step_s": step_s, "tokens_per_s_per_chip": tokens / chips / step_s,
      # Without a cost analysis (XLA:GPU) the step time is only a compute floor: no MFU.
      "mfu": None if flops is None else model_flops / (step_s * chip.peak_flops),
      "compile_s": compile_s,
      # The share of parameters and optimiser state each chip holds; 1 / (fsdp x tensor) at best.
      "state_share": state / whole, "state_ideal_share": ideal,
  }
  return report


def check_fits(config, r: dict) -> None:
  """A step that does not fit in the chip's HBM is an error naming the levers."""
  if r["total_bytes"] > r["hbm_bytes"]:
    raise ConfigError(_levers(config, f"The train step needs {r['total_bytes'] / GiB:.2f} GiB "
                              f"per chip but a {r['chip']} chip has {r['hbm_bytes'] / GiB:.0f} "
                              "GiB of HBM."))


def _batch(r: dict) -> str:
  per = r["tokens_per_step"] // r["global_batch"]
  return f"{r['global_batch']} examples" if per == 1 else f"{r['global_batch']} x {per} tokens"


def _source(r: dict) -> str:
  return ("the model's analytic count" if r.get("model_flops_source") == "analytic" else
          "6 x parameters x tokens")


def format_report(r: dict) -> str:
  g = lambda b: f"{b / GiB:.2f} GiB"  # noqa: E731
  return "\n".join([
      f"{r['topology']} ({r['chips']} chips), mesh {r['mesh']}, {r['parameters'] / 1e6:.1f}M "
      f"parameters, {_batch(r)} a step; compiled in {r['compile_s']:.1f}s. Per chip "
      "(compiler estimates):",
      f"  parameters {g(r['param_bytes'])} + optimiser state {g(r['opt_state_bytes'])}; "
      f"all arguments {g(r['argument_bytes'])}",
      f"  temporaries {g(r['temp_bytes'])}; total {g(r['total_bytes'])} of {g(r['hbm_bytes'])} "
      f"HBM ({100 * r['total_bytes'] / r['hbm_bytes']:.0f}%)",
      f"  FLOPs a step {r['flops'] / 1e12:.2f} T ({_source(r)}: "
      f"{r['model_flops'] / 1e12:.2f} T, ratio {r['flops'] / r['model_flops']:.2f}); "
      f"bytes accessed {g(r['bytes_accessed'])}" if r["flops"] is not None else
      f"  no cost analysis from XLA:GPU; 6 x parameters x tokens: {r['model_flops'] / 1e12:.2f} T"
      " (the roofline below is compute-only)",
      *([f"  note: {_replicated(r['state_share'], r['state_ideal_share'])}"]
        if r["state_share"] > 1.5 * r["state_ideal_share"] else []),
      # XLA's cost analysis counts a while loop's body once: scanned layers look ~L x cheaper.
      *(["  note: FLOPs and bytes count the scanned layer once (XLA's cost analysis of a loop); "
         "the roofline uses 6 x parameters x tokens as its floor"]
        if r["flops"] is not None and r["flops"] < 0.5 * r["model_flops"] else []),
      f"  roofline step {1e3 * r['roofline_step_s']:.1f} ms -> "
      f"{r['tokens_per_s_per_chip']:,.0f} tokens/s/chip, MFU {100 * r['mfu']:.1f}% "
      "(an upper bound: collectives and overlap are not modelled)" if r["mfu"] is not None else
      f"  compute floor {1e3 * r['roofline_step_s']:.1f} ms a step at peak (6ND only; no MFU)",
  ])


def _define_flags() -> None:
  config_flags.DEFINE_config_file(
      "config", None, "Experiment config file (experiments/NAME.py[:variant]).",
      lock_config=True)
  flags.DEFINE_string("topology", None, "TPU slice, e.g. v5e-8, v5e-256, v5p-128, v4-32, v6e-64 "
                      "or libtpu's v5e:2x4; or h100-8 (GPUs).")
  flags.DEFINE_string("json_out", None, "Also write the figures to this JSON file.")
  flags.mark_flags_as_required(["config", "topology"])


def _main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    report = compile_report(FLAGS.config, FLAGS.topology)
    print(format_report(report), flush=True)
    if FLAGS.json_out:
      with open(FLAGS.json_out, "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
    check_fits(FLAGS.config, report)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


def cli() -> None:
  # main's checks turn a bad --config.x into the list of valid keys, as for training.
  main._checked(_define_flags, sys.argv, None)  # pylint: disable=protected-access
  app.run(_main, flags_parser=lambda argv: main._checked(  # pylint: disable=protected-access
      lambda: FLAGS(argv), argv, None))


if __name__ == "__main__":
  cli()
