"""Decoder-only transformer (GPT-2 layout): pre-LayerNorm blocks, GELU MLP (tanh form, as GPT-2;
15% faster than erf on CPU), learned positions or rotary embeddings, optionally tied input/output
embeddings and rematerialised blocks. Weights are fp32 with logical axis names; the compute
precision is config.compute_dtype's (options/precision.py), or `dtype` when set. Initialised as GPT-2:
N(0, 0.02), the residual output projections scaled by 1/sqrt(2 * layers). The block itself is
layers/transformer.py's, shared with the MAE and the ViT.

`causal=False` makes the same network bidirectional (a masked language model's encoder). Negative
token ids are padding, allowed at the end of a sequence only: they are embedded as id 0 and, in a
bidirectional model, hidden from every query (a causal model never looks ahead at them anyway).
`features=True` returns the final hidden states instead of logits (classifiers on top).
Activations carry logical sharding names ("activation_batch" ...; rules in aigc_jax/sharding.py),
which take effect inside the train step's mesh: the batch stays split over data x fsdp whatever the
weights' sharding.
"""


import flax.linen as nn
import jax
import jax.numpy as jnp

from aigc_jax import sharding
from aigc_jax.errors import ConfigError
from aigc_jax.layers import transformer


REMAT = ("none", "full", "dots_saveable", "dots_with_no_batch_dims_saveable",
         "nothing_saveable", "everything_saveable")


def _rematted(block_cls, remat):
  """Block, or Block recomputed in the backward pass under a jax.checkpoint policy."""
  name = {True: "full", False: "none"}.get(remat, remat)
  if name not in REMAT:
    raise ValueError(f"model.remat={remat!r}; valid: {', '.join(REMAT)}.")
  if name == "none":
    return block_cls
  policy = None if name == "full" else getattr(jax.checkpoint_policies, name)
  # self is argument 0: train, decode and cache_len are Python values, not traced.
  return nn.remat(block_cls, static_argnums=(2, 3, 5), policy=policy)


class _ScanStep(nn.Module):
  """One scanned layer: (x, broadcast index and lengths) -> (x, None), as nn.scan wants."""
  block_cls: type
  fields: tuple
  train: bool
  decode: bool
  cache_len: int

  @nn.compact
  def __call__(self, x_BTD, index, lengths_B):
    x_BTD = self.block_cls(*self.fields, name="block")(x_BTD, self.train, self.decode, index,
                                                       self.cache_len, lengths_B)
    return x_BTD, None


class Model(nn.Module):
  vocab_size: int = 65
  block_size: int = 256
  num_layers: int = 6
  num_heads: int = 6
  width: int = 384
  dropout: float = 0.0
  tie_embeddings: bool = True
  # Compute dtype; "" follows the parameters, so config.compute_dtype sets it (precision.py).
  dtype: str = ""
  attention_impl: str = ""  # "": cuDNN on GPU for 16-bit compute, else XLA; or xla | cudnn
  use_bias: bool = True  # False: no biases in dense layers or layer norms (nanoGPT's default)
  position: str = "learned"  # learned (GPT-2 absolute embeddings) | rotary (RoPE on q, k)
  # Recompute each block's activations in the backward pass: "none" | "full" (keep only each
  # block's input) | a jax.checkpoint_policies name ("dots_saveable": keep matmul outputs ...).
  # True / False mean "full" / "none".
  remat: str | bool = "none"
  causal: bool = True  # False: every position attends to every other (masked language models)
  # One Block scanned num_layers times (nn.scan; parameters stacked on a leading "layers" axis,
  # under "blocks"): compile time independent of depth. Unrolled: block0 ... blockN-1.
  scan_layers: bool = False
  # The modern recipe's switches (modded-nanogpt's record table; README "Faster GPT"):
  norm: str = "layer"  # layer (LayerNorm, GPT-2) | rms (parameter-free RMSNorm)
  mlp: str = "gelu"  # gelu (tanh form, GPT-2) | relu2 (ReLU squared)
  qk_norm: bool = False  # RMS-normalise queries and keys per head before attention
  zero_init: bool = False  # output projections (and an untied head) start at zero
  logit_softcap: float = 0.0  # > 0: logits = cap * tanh(logits / cap); 0: off
  value_residual: bool = False  # each block mixes its values with the first block's (learned)
  x0_skip: bool = False  # each block's input mixes in the embedding output (learned weights)
  unet_skips: bool = False  # block n-1-i adds block i's output (learned weights), i < n // 2

  def __post_init__(self):
    _check(self)
    super().__post_init__()

  @nn.compact
  def __call__(self, tokens_BT, *, train: bool = False, decode: bool = False,
               features: bool = False):
    """Logits for every position (`features=True`: the final hidden states [B, T, width]).
    `decode=True` reads and extends the key/value cache (made by `init(..., decode=True)` with
    tokens of the cache's length): positions continue from the cache's index, so a prompt, then
    one token at a time, gives the same logits as one pass."""
    T = tokens_BT.shape[1]
    if T > self.block_size:
      raise ValueError(f"Sequence length {T} exceeds the model's block_size {self.block_size}.")
    if decode and not self.causal:
      raise ValueError("decode=True needs a causal model; a bidirectional one has no cache.")
    lengths_B = None
    if not self.causal:  # trailing padding (ids < 0) hidden from every query
      lengths_B = jnp.maximum(jnp.sum(tokens_BT >= 0, axis=1), 1).astype(jnp.int32)
    tokens_BT = jnp.maximum(tokens_BT, 0)
    index = 0
    if decode:
      idx = self.variable("cache", "index", lambda: jnp.zeros((), jnp.int32))
      index = idx.value
      if not self.is_initializing():
        idx.value = index + T
    dtype = jnp.dtype(self.dtype) if self.dtype else None
    wte = nn.Embed(self.vocab_size, self.width, dtype=dtype, name="wte",
                   embedding_init=transformer.normal(0.02, ("vocab", "embed")))
    x_BTD = wte(tokens_BT)
    if self.position == "learned":
      wpe = nn.Embed(self.block_size, self.width, dtype=dtype, name="wpe",
                     embedding_init=transformer.normal(0.02, (None, "embed")))
      x_BTD = x_BTD + wpe(index + jnp.arange(T))[None]
    elif self.position != "rotary":
      raise ValueError(f"position={self.position!r}; valid: learned, rotary.")
    x_BTD = sharding.constrain(x_BTD, transformer.BTD)
    x_BTD = nn.Dropout(self.dropout, deterministic=not train)(x_BTD)
    block = _rematted(transformer.Block, self.remat)
    fields = (self.num_heads, self.num_layers, self.dropout, dtype, self.attention_impl,
              self.use_bias, self.position == "rotary", self.causal, self.norm, self.mlp,
              self.qk_norm, self.zero_init, self.value_residual, self.x0_skip)
    if self.scan_layers:
      stack = nn.scan(_ScanStep, variable_axes={"params": 0, "cache": 0},
                      split_rngs={"params": True, "dropout": True}, in_axes=(nn.broadcast,) * 2,
                      length=self.num_layers, metadata_params={nn.PARTITION_NAME: "layers"})
      x_BTD, _ = stack(block, fields, train, decode, self.block_size, name="blocks")(
          x_BTD, index, lengths_B)
    else:
      x0_BTD, v1, skips = x_BTD, None, []
      n = self.num_layers
      # (none for one layer: orbax cannot store an empty array)
      skip_w = (transformer.scalars(self, "skip_weights", [1.0] * (n // 2))
                if self.unet_skips and n > 1 else None)
      for i in range(n):
        if skip_w is not None and i >= n - n // 2:
          x_BTD = x_BTD + skip_w[n - 1 - i].astype(x_BTD.dtype) * skips[n - 1 - i]
        out = block(*fields, name=f"block{i}")(x_BTD, train, decode, index, self.block_size,
                                               lengths_B, x0_BTD, v1)
        x_BTD, v = out if self.value_residual else (out, None)
        v1 = v if i == 0 else v1
        skips.append(x_BTD)
    x_BTD = transformer.norm(self.norm, dtype, self.use_bias, "ln_f")(x_BTD)
    if features:
      return x_BTD
    if self.tie_embeddings:
      logits = wte.attend(x_BTD)
    else:
      logits = nn.Dense(self.vocab_size, use_bias=False, dtype=dtype, name="head",
                        kernel_init=(transformer.zeros if self.zero_init else
                                     lambda n_: transformer.normal(0.02, n_))(
                                         ("embed", "vocab")))(x_BTD)
    if self.logit_softcap > 0:  # bounded logits: tanh in float32, as the loss reads them
      cap = self.logit_softcap
      logits = (cap * jnp.tanh(logits.astype(jnp.float32) / cap)).astype(logits.dtype)
    return transformer.constrain(logits, "activation_vocab")


def _check(m) -> None:
  """Recipe options that cannot work, refused when the model is built (before compiling)."""
  if m.norm not in transformer.NORMS:
    raise ConfigError(f"model.norm={m.norm!r}; valid: {', '.join(transformer.NORMS)}.")
  if m.mlp not in transformer.MLPS:
    raise ConfigError(f"model.mlp={m.mlp!r}; valid: {', '.join(transformer.MLPS)}.")
  if m.logit_softcap < 0:
    raise ConfigError(f"model.logit_softcap={m.logit_softcap} must be > 0 (e.g. 15, as "
                      "modded-nanogpt) or 0 for no cap: a cap <= 0 would flip or zero the logits.")
  if m.scan_layers and (m.value_residual or m.x0_skip or m.unet_skips):
    raise ConfigError("model.value_residual, x0_skip and unet_skips pass values between "
                      "different layers, which one scanned block cannot: set "
                      "model.scan_layers=False with them.")

