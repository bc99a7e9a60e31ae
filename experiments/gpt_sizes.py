r"""GPT decoders at GPT-2's sizes and one ~7B, for ahead-of-time compiles on TPU topologies.

Sizes (variant: layers x heads x width): `124m` 12 x 12 x 768, `350m` 24 x 16 x 1024, `774m`
36 x 20 x 1280, `1.5b` 48 x 25 x 1600 (GPT-2's four, Radford et al. 2019), `7b` 32 x 32 x 4096
(LLaMA-7B's shape with GPT-2's 4x GELU MLP: 6.65B parameters). All: context 1024, vocabulary
50,304 (GPT-2's 50,257 padded to a multiple of 128), tied embeddings, bfloat16 compute with
float32 parameters and AdamW state, global batch 512 x 1,024 tokens (0.5M, GPT-3's for its small
models).

Command (no data and no accelerator needed; `pip install -e ".[tpu]"` for libtpu):
  python -m aigc_jax.compile --config=experiments/gpt_sizes.py:124m --topology=v5e-256 \
      --config.mesh.data=-1 --config.mesh.fsdp=16 [--config.model.remat=True]

The data section is tiny Shakespeare as bytes so that any variant also trains as it stands (a
smoke test); a real run points data.name at a large corpus with a BPE tokenizer.

Measured (FIGURES below: compiler estimates, not runs).
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
                 width=width, dropout=0.0, use_bias=True, dtype="bfloat16")
  c.model.remat = False
  c.data.update(tokenizer="byte", seq_len=1024, packing="packed", batch_size=512,
                eval_batch_size=512)
  c.optim.update(lr=6e-4, b2=0.95, warmup_steps=700)
  c.train.update(num_steps=20000, log_every_steps=100, eval_every_steps=1000,
                 checkpoint_every_steps=1000)
  return c

if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
