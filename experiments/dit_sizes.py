r"""DiT-B/2, L/2 and XL/2 as in the DiT paper (Peebles & Xie 2023), for ahead-of-time compiles.

256x256 images are modelled in Stable Diffusion's VAE latent space, 32x32x4 (the latents are
computed once, outside the train step, as the paper does), cut into 2x2 patches: 256 tokens.
Class-conditional on ImageNet's 1,000 classes with 10% label dropout, AdamW at 1e-4 without
weight decay, global batch 256, EMA 0.9999, bfloat16 compute.

Command (no data and no accelerator needed; `pip install -e ".[tpu]"` for libtpu):
  python -m aigc_jax.tools.compile --config=experiments/dit_sizes.py:XL --topology=v5e-256 \
      --config.mesh.data=-1 [--config.mesh.fsdp=8] [--config.data.batch_size=512]

The compile tool's MFU counts models.dit.forward_macs (the paper's "Gflops": 118.6 for XL/2,
ours 118.62) x 2 FLOPs x 3 (forward and backward) per image as the useful work.

Compiler estimates per chip (libtpu 0.0.50.1; not runs; MFU is the roofline bound): XL/2 counts
721.6 GFLOP per image for a training step on v5p-128, +1.4% of 3 x 2 x 118.6; data-parallel at
batch 256: 11.9 / 16 GiB and 4.3% on v5e-256, 12.0 / 95 GiB and 19.2% on v5p-128; batch 1,024
on v5e-256 as 16 x 16 (data x fsdp): 3.1 / 16 GiB, 24.5%; on v5p-128 as 8 x 8: 7.3 / 95 GiB,
68.3%. B/2 and L/2 in the docs.

Results and notes: docs/scale.md, section 'DiT sizes on v5e-256 and v5p-128'.
"""

import ml_collections

from aigc_jax import config as config_lib
from aigc_jax.models import dit

VARIANTS = ("B", "L", "XL")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  name = (arg or "XL").removesuffix("/2")
  if name not in VARIANTS:
    raise ValueError(f"Unknown variant {arg!r} of dit_sizes; valid: B, L, XL (patch 2).")
  depth, width, heads = dit.SIZES[name]
  c = config_lib.get_config(task="diffusion")
  c.model = ml_collections.ConfigDict(dict(
      name="dit", image_size=32, channels=4, patch=2, width=width, depth=depth,
      num_heads=heads, num_classes=1000))
  c.compute_dtype = "bfloat16"
  # A real run reads precomputed latents of imagenet2012 (a data set of 32x32x4 "input" and
  # "label"); compiling reads no data.
  c.data.update(name="imagenet2012_latents", batch_size=256, eval_batch_size=256)
  c.diffusion.update(process="vp", schedule="linear", prediction="eps", ema_decay=0.9999)
  c.optim.update(name="adamw", lr=1e-4, weight_decay=0.0, schedule="constant", warmup_steps=0)
  c.sampler.update(name="ddpm", steps=250, guidance=1.5)
  c.train.update(num_steps=400_000, log_every_steps=100, eval_every_steps=50_000,
                 checkpoint_every_steps=10_000)
  return c


if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
