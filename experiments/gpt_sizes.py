r"""GPT decoders at GPT-2's sizes and one ~7B, for ahead-of-time compiles on TPU topologies.

Sizes (variant: layers x heads x width): `124m` 12 x 12 x 768, `350m` 24 x 16 x 1024, `774m`
36 x 20 x 1280, `1.5b` 48 x 25 x 1600 (GPT-2's four, Radford et al. 2019), `7b` 32 x 32 x 4096
(LLaMA-7B's shape with GPT-2's 4x GELU MLP: 6.65B parameters). All: context 1024, vocabulary
50,304 (GPT-2's 50,257 padded to a multiple of 128), tied embeddings, bfloat16 compute with
float32 parameters and AdamW state, global batch 512 x 1,024 tokens (0.5M, GPT-3's for its small
models).

Command (no data and no accelerator needed; `pip install -e ".[tpu]"` for libtpu):
  python -m aigc_jax.compile --config=experiments/gpt_sizes.py:124m --topology=v5e-256 \
      --config.mesh.data=1 --config.mesh.fsdp=-1 [--config.model.remat=full]

The data section is tiny Shakespeare as bytes so that any variant also trains as it stands (a
smoke test); a real run points data.name at a large corpus with a BPE tokenizer.

Compiler estimates per chip (python -m aigc_jax.compile, libtpu 0.0.50.1; not runs; MFU is the
roofline bound, max(FLOPs / peak, bytes accessed / HBM bandwidth); mesh data x fsdp x tensor):
  size  slice    mesh        remat  params+AdamW  temporaries  total/HBM      MFU bound
  124m  v5e-256  1x256x1     no     0.01 GiB      2.55 GiB     2.7/16 GiB     20%
  124m  v5p-128  64x1x1      no     1.39 GiB      10.61 GiB    12.1/95 GiB    44%
  124m  v5p-128  16x1x4      no     0.35 GiB      10.95 GiB    11.4/95 GiB    38%
  350m  v5e-256  1x256x1     no     0.02 GiB      5.57 GiB     5.8/16 GiB     27%
  350m  v5p-128  64x1x1      no     3.97 GiB      24.29 GiB    28.5/95 GiB    52%
  774m  v5e-256  1x256x1     no     0.04 GiB      9.44 GiB     9.9/16 GiB     37%
  774m  v5p-128  8x8x1       no     1.08 GiB      43.75 GiB    45.4/95 GiB    68%
  1.5b  v5e-256  1x256x1     yes    17.4 GiB: width 1,600 is not divisible by 256, weights stay
                                    replicated; XLA: 21.1 GiB of temporaries, does not fit
  1.5b  v5e-256  1x64x4      yes    0.14 GiB      2.61 GiB     3.0/16 GiB     16% (25 heads over
                                    4: attention replicated, 44.4 TFLOP a chip against 6ND's 19.1)
  1.5b  v5p-128  1x64x1      no     0.28 GiB      76.32 GiB    77.6/95 GiB    87%
  7b    v5e-256  1x64x4      yes    0.29 GiB      2.04 GiB     3.1/16 GiB     79%
  7b    v5p-128  1x64x1      yes    1.17 GiB      16.30 GiB    18.5/95 GiB    79%
  1.5b  v5e-256  4x64x1      yes    0.28 GiB      1.37 GiB     2.65/16 GiB    34%
Compile times on the 2-core CPU machine under load: 1-2.5 minutes (124M-7B), 4 minutes for 1.5B's
48 unrolled layers.
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
