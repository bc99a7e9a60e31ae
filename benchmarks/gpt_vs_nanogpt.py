"""GPT train-step speed and MFU, next to nanoGPT's figures on the same machines.

  python -m benchmarks.gpt_vs_nanogpt [--cases=quick,fast,shakespeare,gpt2] [--steps=20]
      [--repeats=3] [--peak_tflops=989] [--dtype=bfloat16]

Cases: `quick` (nanoGPT's CPU configuration: 4 layers, width 128, context 64, batch 12), `fast`
(gpt_shakespeare_char:fast, the modern recipe with Muon at batch 16),
`shakespeare` (train_shakespeare_char: 6 layers, width 384, context 256, batch 64) and `gpt2`
(GPT-2 124M: 12 layers, width 768, context 1024, vocabulary 50,304, batch 16). The step is the
training step the trainer runs (AdamW, clipping, donated state) on random tokens, so it measures
compute alone; the input pipeline's rate is in benchmarks/input_pipeline.py. FLOPs per token are
counted as nanoGPT does: 6N + 12 L H Q T, N the parameters without position embeddings. MFU is
against --peak_tflops (989 = H100 SXM bf16 dense). On CPU, --cpu_devices splits the batch over
that many CPU devices (what experiments do with config.cpu_devices), and --peak_tflops=0 measures
the peak instead: a 2048^3 float32 matmul on all cores. "XLA GFLOP/s" is the compiled step's own
FLOP count (cost analysis: everything, the optimiser's Newton-Schulz included) per second, and
"of peak" its share of that peak.
"""

import statistics
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags, logging

from aigc_jax import optim, sharding, step as step_lib, tasks
from experiments import gpt_shakespeare_char

_CASES = flags.DEFINE_list("cases", ["quick", "shakespeare", "gpt2"], "Which configurations.")
_STEPS = flags.DEFINE_integer("steps", 20, "Steps per timing repeat.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Repeats; the median is reported.")
_PEAK = flags.DEFINE_float("peak_tflops", 989.0, "Peak TFLOP/s for MFU (H100 bf16 dense).")
_DTYPE = flags.DEFINE_string("dtype", "", "Compute dtype; default bfloat16 on GPU/TPU, float32 "
                             "on CPU.")
_CPU_DEVICES = flags.DEFINE_integer("cpu_devices", 0, "CPU devices to split the batch over.")

# nanoGPT's published/measured step times on the project's machines (issue text), in ms.
REFERENCE_MS = {("quick", "cpu"): 55.0, ("shakespeare", "gpu"): 14.3, ("gpt2", "gpu"): 37.2}


def case_config(name: str) -> ml_collections.ConfigDict:
  c = gpt_shakespeare_char.get_config(name if name in ("quick", "fast") else None)
  c.model.vocab_size = 65
  if name == "gpt2":
    c.model.update(vocab_size=50304, block_size=1024, num_layers=12, num_heads=12, width=768,
                   dropout=0.0)
    c.data.update(seq_len=1024, batch_size=16)
  elif name not in ("quick", "fast", "shakespeare"):
    raise app.UsageError(f"Unknown case {name!r}; valid: quick, fast, shakespeare, gpt2.")
  return c


def flops_per_token(m) -> float:
  d, L, T = m.width, m.num_layers, m.block_size
  n = L * 12 * d * d + m.vocab_size * d  # blocks (qkv, out, 4x MLP) + tied embedding
  return 6 * n + 12 * L * m.num_heads * (d // m.num_heads) * T


def measure(name: str, dtype: str, peak: float) -> dict:
  c = case_config(name)
  c.compute_dtype = dtype
  mesh = sharding.make_mesh(c.mesh)
  task, _ = tasks.get_task(c, without_data=True)  # under config.compute_dtype's policy
  B, T = c.data.batch_size, c.data.seq_len
  spec = {k: jax.ShapeDtypeStruct((B, T), jnp.int32) for k in ("input", "target")}
  tx = optim.make_optimizer(c.optim, c.train.num_steps)
  _, state_sh, init = step_lib.sharded_state(task, tx, jax.random.PRNGKey(0), spec, mesh)
  state = init()
  tokens = np.random.default_rng(0).integers(0, c.model.vocab_size, (B, T + 1), np.int32)
  batch = sharding.host_to_global({"input": tokens[:, :-1], "target": tokens[:, 1:]}, mesh)
  t = time.perf_counter()
  step = step_lib.make_train_step(task, tx, state_sh, sharding.batch_sharding(mesh))
  step = step.lower(state, batch).compile()
  compile_s = time.perf_counter() - t
  step_flops = float((step.cost_analysis() or {}).get("flops", 0.0)) * mesh.devices.size
  for _ in range(3):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  times = []
  for _ in range(_REPEATS.value):
    t = time.perf_counter()
    for _ in range(_STEPS.value):
      state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    times.append((time.perf_counter() - t) / _STEPS.value)
  step_s = statistics.median(times)
  n_params = sum(x.size for x in jax.tree.leaves(state.params))
  tok_s = B * T / step_s
  return {"case": name, "params": n_params, "compile_s": compile_s, "step_ms": step_s * 1e3,
          "xla_gflops": step_flops / step_s / 1e9,
          "tokens_per_s": tok_s, "mfu": flops_per_token(c.model) * tok_s / (peak * 1e12),
          "devices": mesh.devices.size, "batch": B, "seq": T}


def matmul_peak_tflops(n: int = 2048, repeats: int = 5) -> float:
  """This machine's float32 matmul rate on all its cores (the best of `repeats`)."""
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  best = min(_timed(lambda: f(a).block_until_ready()) for _ in range(repeats))
  return 2 * n**3 / best / 1e12


def _timed(fn) -> float:
  t = time.perf_counter()
  fn()
  return time.perf_counter() - t


def main(_):
  logging.set_verbosity(logging.WARNING)
  if _CPU_DEVICES.value:
    jax.config.update("jax_num_cpu_devices", _CPU_DEVICES.value)
  backend = jax.default_backend()
  dtype = _DTYPE.value or ("float32" if backend == "cpu" else "bfloat16")
  peak = _PEAK.value or matmul_peak_tflops()
  print(f"backend={backend} device={jax.devices()[0].device_kind} devices={jax.device_count()} "
        f"dtype={dtype} jax={jax.__version__} peak={peak:g} TFLOP/s"
        f"{'' if _PEAK.value else ' (measured: 2048^3 float32 matmul)'}")
  print(f"{'case':<12}{'params':>10}{'batch x T':>11}{'compile s':>10}{'step ms':>9}"
        f"{'tokens/s':>11}{'MFU':>7}{'XLA GFLOP/s':>12}{'of peak':>8}{'nanoGPT ms':>12}")
  for name in _CASES.value:
    r = measure(name, dtype, peak)
    ref = REFERENCE_MS.get((name, "cpu" if backend == "cpu" else "gpu"))
    print(f"{name:<12}{r['params'] / 1e6:>9.2f}M{r['batch']:>6} x{r['seq']:>4}"
          f"{r['compile_s']:>10.1f}{r['step_ms']:>9.2f}{r['tokens_per_s']:>11.0f}"
          f"{r['mfu']:>7.1%}{r['xla_gflops']:>12.1f}{r['xla_gflops'] / (peak * 1e3):>8.1%}"
          f"{ref if ref else '-':>12}", flush=True)


if __name__ == "__main__":
  app.run(main)
