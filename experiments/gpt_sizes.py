r"""GPT decoders at GPT-2's sizes and one ~7B, for ahead-of-time compiles on TPU topologies.

Sizes: GPT-2's four (Radford et al. 2019), `124m`, `350m`, `774m`, `1.5b`, and `7b` (LLaMA-7B's
shape, 6.65B parameters); context 1024, global batch 512 x 1,024 tokens, bfloat16 compute.

Command (no data and no accelerator needed; `pip install -e ".[tpu]"` for libtpu):
  python -m aigc_jax.tools.compile --config=experiments/gpt_sizes.py:124m --topology=v5e-256 \
      --config.mesh.data=1 --config.mesh.fsdp=-1 [--config.model.remat=full]

Compiler estimates per chip (libtpu 0.0.50.1; not runs; MFU is the roofline bound): 7b on
v5e-256, 1x64x4 (data x fsdp x tensor), remat: 3.1/16 GiB, 79%; 1.5b on v5p-128, 1x64x1:
77.6/95 GiB, 87%; 124m on v5e-256, 1x256x1: 2.7/16 GiB, 20%. Compiles on the 2-core CPU under
load: 1-2.5 minutes (124M-7B), 4 minutes for 1.5B's 48 unrolled layers.

Full results and notes: docs/scale.md, section 'GPT sizes on v5e-256 and v5p-128'.
"""

import ml_collections

from experiments import gpt_shakespeare_char

# name: (layers, heads, width)
SIZES = {
    "124m": (12, 12, 768),
    "350m": (24, 16, 1024),
    "774m": (36, 20, 1280),
    "1.5b": (48, 25, 1600),
    "7b": (32, 32, 4096),
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  name = arg or "124m"
  if name not in SIZES:
    raise ValueError(f"Unknown variant {arg!r} of gpt_sizes; valid: {', '.join(SIZES)}.")
  layers, heads, width = SIZES[name]
  c = gpt_shakespeare_char.get_config()  # its data, evaluators and AdamW recipe, scaled up
  c.model.update(vocab_size=50304, block_size=1024, num_layers=layers, num_heads=heads,
                 width=width, dropout=0.0, use_bias=True)
  c.compute_dtype = "bfloat16"
  c.model.remat = "none"  # full, dots_saveable ... (models/gpt.py)
  c.model.scan_layers = False
  c.data.update(tokenizer="byte", seq_len=1024, packing="packed", batch_size=512,
                eval_batch_size=512)
  c.optim.update(lr=6e-4, b2=0.95, warmup_steps=700)
  c.train.update(num_steps=20000, log_every_steps=100, eval_every_steps=1000,
                 checkpoint_every_steps=1000)
  return c

if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
