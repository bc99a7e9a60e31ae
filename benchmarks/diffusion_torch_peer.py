"""The PyTorch side of benchmarks/diffusion_vs_torch.py: diffusers' UNet2DModel trained with its
DDPMScheduler and sampled with it, on this CPU. Runs in a separate environment with torch and
diffusers (never the project's); prints one JSON line.

  /path/to/torch-env/bin/python benchmarks/diffusion_torch_peer.py --width=16 --batch=64
"""

import argparse
import json
import statistics
import time

import torch
from diffusers import DDPMScheduler, UNet2DModel


def unet(width: int, groups: int) -> UNet2DModel:
  """The project's quick U-Net's shape: 28x28x1, widths (1, 2, 2) x width, one residual block a
  level, attention at 7x7, group norm, a time embedding of 4 x width."""
  return UNet2DModel(
      sample_size=28, in_channels=1, out_channels=1, layers_per_block=1,
      block_out_channels=(width, 2 * width, 2 * width),
      down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
      up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
      norm_num_groups=groups, attention_head_dim=2 * width // 4, dropout=0.1)


def rate(fn, n: int, repeats: int) -> float:
  """Calls of fn per second: the median over repeats of n calls."""
  fn()
  rates = []
  for _ in range(repeats):
    t = time.perf_counter()
    for _ in range(n):
      fn()
    rates.append(n / (time.perf_counter() - t))
  return statistics.median(rates)


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--width", type=int, default=16)
  p.add_argument("--groups", type=int, default=8)
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--sample_batch", type=int, default=250)
  p.add_argument("--sample_steps", type=int, default=20)
  p.add_argument("--steps", type=int, default=10)
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--threads", type=int, default=2)
  a = p.parse_args()
  torch.set_num_threads(a.threads)
  torch.manual_seed(0)
  model = unet(a.width, a.groups)
  sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
  opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
  x0 = torch.rand(a.batch, 1, 28, 28) * 2 - 1

  def train_step():
    noise = torch.randn_like(x0)
    t = torch.randint(0, 1000, (a.batch,))
    pred = model(sched.add_noise(x0, noise, t), t).sample
    loss = torch.nn.functional.mse_loss(pred, noise)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()

  model.train()
  train = rate(train_step, a.steps, a.repeats) * a.batch
  model.eval()
  sched.set_timesteps(a.sample_steps)

  @torch.no_grad()
  def sample():
    x = torch.randn(a.sample_batch, 1, 28, 28)
    for t in sched.timesteps:
      x = sched.step(model(x, t).sample, t, x).prev_sample
    return x

  draw = rate(sample, 1, a.repeats) * a.sample_batch
  print(json.dumps({"params": sum(p.numel() for p in model.parameters()),
                    "train_images_per_s": train, "sample_images_per_s": draw,
                    "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
  main()
