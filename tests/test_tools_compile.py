"""Ahead-of-time compiles of the train step for a TPU slice (v5e-8) on the CPU machine.

The compiles need libtpu (`pip install -e ".[tpu]"`) and are skipped without it."""

import importlib.util

import pytest

from aigc_jax import sharding
from aigc_jax.tools import compile as aot
from aigc_jax.errors import ConfigError
from experiments import gpt_sizes

needs_cuda_plugin = pytest.mark.skipif(
    not aot.has_cuda_plugin(),
    reason='jax\'s CUDA plugin is not installed: pip install -e ".[gpu_aot]"')
needs_libtpu = pytest.mark.skipif(importlib.util.find_spec("libtpu") is None,
                                  reason='libtpu is not installed: pip install -e ".[tpu]"')


def _small_gpt(**mesh):
  """GPT-2 124M's recipe at 2 layers, width 256 and 256 tokens: compiles in seconds."""
  c = gpt_sizes.get_config("124m")
  c.model.update(num_layers=2, num_heads=4, width=256, vocab_size=1024, block_size=256)
  c.data.update(seq_len=256, batch_size=64)
  c.mesh.update(**mesh)
  return c


@pytest.fixture(scope="module")
def reports():
  """Data parallel, FSDP within 2 data-parallel groups of 4, and FSDP over all 8 chips."""
  meshes = {"dp": dict(data=8, fsdp=1), "fsdp4": dict(data=2, fsdp=4),
            "fsdp8": dict(data=1, fsdp=8)}
  return {k: aot.compile_report(_small_gpt(**m), "v5e-8") for k, m in meshes.items()}


@pytest.mark.parametrize("name,topology,bounds", [
    ("v5e-8", "v5e:2x4", (2, 2, 1)),
    ("v5e-256", "v5e:16x16", (2, 2, 1)),
    ("v6e-64", "v6e:8x8", (2, 2, 1)),
    ("v5p-128", "v5p:4x4x4", (2, 2, 1)),  # v5p and v4 names count TensorCores, 2 per chip
    ("v4-32", "v4:2x2x4", (2, 2, 1)),
    ("v5p:2x2x1", "v5p:2x2x1", (2, 2, 1)),
    ("h100-8", "1x1x8", None), ("h100-32", "1x4x8", None),
])
def test_topology_names(name, topology, bounds):
  assert aot.parse_topology(name)[1:] == (topology, bounds)


@pytest.mark.parametrize("name,match", [
    ("v3-8", "Unknown topology"), ("v5e-12", "power of two"), ("v5p-3", "TensorCores"),
    ("v5e:2x2x2", "2-D"), ("h100-12", "multiple of 8"),
])
def test_bad_topology_names(name, match):
  with pytest.raises(ConfigError, match=match):
    aot.parse_topology(name)


def test_without_libtpu_it_says_how_to_install(monkeypatch):
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda n, *a: None if n == "libtpu" else real(n, *a))
  with pytest.raises(ConfigError, match=r'pip install -e "\.\[tpu\]"'):
    aot.topology_devices("v5e-8")


@needs_libtpu
def test_fsdp_costs_no_more_flops_or_temporaries_than_data_parallel(reports):
  # Without activation constraints FSDP replicated work: +41% FLOPs and 10x temporaries over
  # 2 x 4 chips, 2x FLOPs and 31x temporaries over 8.
  dp, fsdp4, fsdp8 = reports["dp"], reports["fsdp4"], reports["fsdp8"]
  assert 1.0 < dp["flops"] / dp["model_flops"] < 1.5  # the compiler's count vs 6 x N x tokens
  assert fsdp4["flops"] == pytest.approx(dp["flops"], rel=0.05)
  assert fsdp4["temp_bytes"] <= dp["temp_bytes"]
  # Over all 8 chips XLA rewrites the weight-gradient matmuls as windowed convolutions that its
  # cost analysis counts ~15% lower, and the gathered weights are temporaries (arguments under
  # data parallelism): no more FLOPs, and no more memory in all.
  assert fsdp8["flops"] <= 1.05 * dp["flops"]
  assert fsdp8["total_bytes"] <= dp["total_bytes"]


@needs_libtpu
@pytest.mark.parametrize("name,n", [("fsdp4", 4), ("fsdp8", 8)])
def test_fsdp_divides_parameter_and_optimiser_bytes(reports, name, n):
  dp, fsdp = reports["dp"], reports[name]
  state = lambda r: r["param_bytes"] + r["opt_state_bytes"]  # noqa: E731
  assert state(dp) / state(fsdp) == pytest.approx(n, rel=0.1)
  # The compiler's arguments shrink too, less than n-fold at this toy size: TPU tiles pad the
  # shards of small vectors (biases, norms) to whole tiles.
  assert dp["argument_bytes"] / fsdp["argument_bytes"] > 0.7 * n


@needs_libtpu
def test_a_step_that_cannot_fit_names_the_levers():
  c = _small_gpt(data=8, fsdp=1)
  c.model.update(width=8192, num_heads=64)  # 1.6B parameters + AdamW: 19 GiB replicated
  with pytest.raises(ConfigError, match=r"16 GiB of HBM.*fsdp.*remat.*batch_size.*tensor"):
    aot.check_fits(c, aot.compile_report(c, "v5e-8"))


@needs_cuda_plugin
def test_h100_compiles_without_a_gpu():
  r = aot.compile_report(_small_gpt(data=8, fsdp=1), "h100-8")
  assert r["chip"] == "h100" and r["flops"] is None  # XLA:GPU gives no cost analysis
  assert 0 < r["total_bytes"] < r["hbm_bytes"] and r["mfu"] is None


@needs_libtpu
def test_a_mesh_axis_may_split_the_torus():
  # 8 x 8 on v5p-128's 4x4x4 chips: no axis is a product of torus sides, so one is split.
  _, devices = aot.topology_devices("v5p-128")
  mesh = sharding.make_mesh({"data": -1, "fsdp": 8, "tensor": 1}, devices)
  assert dict(mesh.shape) == {"data": 8, "fsdp": 8, "tensor": 1}
  assert len(set(mesh.devices.flat)) == 64


@needs_libtpu
def test_a_dit_compiles_without_data_and_counts_its_own_flops():
  # The diffusion task's data-free path (what experiments/dit_sizes.py relies on) at a toy size:
  # 64 tokens of width 128, 4 layers, compiled for v5e-8 in seconds.
  from aigc_jax.models import dit
  from experiments import dit_sizes
  c = dit_sizes.get_config("B")
  c.model.update(image_size=16, depth=4, width=128, num_heads=4, num_classes=10)
  c.data.batch_size = 64
  c.mesh.update(data=8, fsdp=1)
  r = aot.compile_report(c, "v5e-8")
  assert r["model_flops_source"] == "analytic"
  assert r["model_flops"] == pytest.approx(dit.train_flops_per_example(c.model) * 64 / 8)
  # The compiler counts what the analytic count leaves out (norms, softmax, the loss, AdamW):
  # 7% more at this size (libtpu 0.0.50.1), not a different program's worth.
  assert 1.0 < r["flops"] / r["model_flops"] < 1.3
  assert r["fits"] and r["global_batch"] == 64
