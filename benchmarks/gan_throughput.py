"""Training images/s of the default DCGAN (one discriminator and one generator update per step),
next to a plain PyTorch eager step of the same networks on the same machine.

  python -m benchmarks.gan_throughput                       # batches 64 and 256
  python -m benchmarks.gan_throughput --batches=64 --torch  # also time PyTorch eager here

Our step is the GAN task's single jitted, donated step (both players, EMA, metrics), timed as the
median of several repeats on a fixed batch; the input pipeline is timed alone beside it.
"""

import statistics
import time

import jax
from absl import app, flags

from benchmarks.measure import measure
from experiments import dcgan_mnist, wgan_gp_mnist

_BATCHES = flags.DEFINE_list("batches", ["64", "256"], "Global batch sizes (images per update).")
_STEPS = flags.DEFINE_integer("steps", 200, "Steps per repeat.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Repeats; the median is reported.")
_TORCH = flags.DEFINE_bool("torch", False, "Also time a PyTorch eager step (needs torch).")
_WGAN = flags.DEFINE_bool("wgan", False, "Also time the WGAN-GP step (5 critic updates + GP).")

# The reference figures on one H100 (PyTorch eager, same architecture): ms per step.
REFERENCE_TORCH_MS = {64: 6.0, 256: 7.0}


def torch_step_ms(batch: int, steps: int, repeats: int) -> float:
  """A plain PyTorch eager DCGAN step of the same networks (BCE, Adam 2e-4, 0.5/0.999)."""
  import torch  # pylint: disable=import-outside-toplevel
  from torch import nn  # pylint: disable=import-outside-toplevel

  dev = "cuda" if torch.cuda.is_available() else "cpu"

  def up(cin, cout, stride):
    return nn.ConvTranspose2d(cin, cout, 5, stride, 2, output_padding=stride - 1, bias=False)

  gen = nn.Sequential(
      nn.Linear(100, 7 * 7 * 256, bias=False), nn.BatchNorm1d(7 * 7 * 256), nn.ReLU(),
      nn.Unflatten(1, (256, 7, 7)), up(256, 128, 1), nn.BatchNorm2d(128), nn.ReLU(),
      up(128, 64, 2), nn.BatchNorm2d(64), nn.ReLU(), up(64, 1, 2), nn.Tanh()).to(dev)
  disc = nn.Sequential(
      nn.Conv2d(1, 64, 5, 2, 2), nn.LeakyReLU(0.2), nn.Conv2d(64, 128, 5, 2, 2),
      nn.BatchNorm2d(128), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(7 * 7 * 128, 1)).to(dev)
  opt_g = torch.optim.Adam(gen.parameters(), 2e-4, betas=(0.5, 0.999))
  opt_d = torch.optim.Adam(disc.parameters(), 2e-4, betas=(0.5, 0.999))
  bce = nn.BCEWithLogitsLoss()
  real = torch.rand(batch, 1, 28, 28, device=dev) * 2 - 1
  ones = torch.ones(batch, 1, device=dev)
  zeros = torch.zeros(batch, 1, device=dev)

  def step():
    fake = gen(torch.randn(batch, 100, device=dev))
    opt_d.zero_grad()
    (bce(disc(real), ones) + bce(disc(fake.detach()), zeros)).backward()
    opt_d.step()
    opt_g.zero_grad()
    bce(disc(fake), ones).backward()
    opt_g.step()

  def sync():
    if dev == "cuda":
      torch.cuda.synchronize()

  for _ in range(10):
    step()
  sync()
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    for _ in range(steps):
      step()
    sync()
    times.append((time.perf_counter() - t) / steps * 1e3)
  return statistics.median(times)


def main(_):
  print(f"backend={jax.default_backend()} device={jax.devices()[0].device_kind}")
  print("| experiment | batch | our step | our images/s | input pipeline images/s | "
        "PyTorch eager here | reference PyTorch (H100) | speed-up |")
  print("|---|---|---|---|---|---|---|---|")
  cases = [(dcgan_mnist, int(b)) for b in _BATCHES.value]
  if _WGAN.value:
    cases += [(wgan_gp_mnist, int(b)) for b in _BATCHES.value]
  for module, b in cases:
    c = module.get_config()
    c.evals = {}  # throughput only
    c.data.batch_size = b * c.gan.n_critic
    r = measure(c, _STEPS.value, _REPEATS.value)
    ms = 1e3 / r["step_rate"]
    torch_ms = torch_step_ms(b, _STEPS.value, _REPEATS.value) \
        if _TORCH.value and module is dcgan_mnist else None
    ref = REFERENCE_TORCH_MS.get(b) if module is dcgan_mnist else None
    base = torch_ms or ref
    print(f"| {module.__name__.split('.')[-1]} | {b} | {ms:.3f} ms | {b / ms * 1e3:,.0f} | "
          f"{r['data_rate'] * c.data.batch_size:,.0f} | "
          f"{f'{torch_ms:.2f} ms' if torch_ms else '-'} | {f'{ref} ms' if ref else '-'} | "
          f"{f'{base / ms:.1f}x' if base else '-'} |", flush=True)


if __name__ == "__main__":
  app.run(main)
