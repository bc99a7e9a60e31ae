"""A sequence classifier on a transformer: fine-tuning a pretrained GPT or masked-LM encoder.

`encoder` holds `gpt.Model`'s fields (num_layers, width, causal ...) and builds it under the
name `encoder` with tied embeddings, so the subtree `encoder` has exactly the parameters of a
trained `gpt` run (causal) or `mlm` run (bidirectional) and is loaded with
`config.init.map = "encoder<-"`. Token ids < 0 are padding (data.packing="examples"); the
features are the final hidden states averaged over real tokens ("mean") or the last real token's
("last", which has seen the whole line in a causal model), then a dense layer to the classes.
"""

import dataclasses
from typing import Mapping

import flax.linen as nn
import jax.numpy as jnp
from flax.core import FrozenDict

from aigc_jax.errors import ConfigError
from aigc_jax.layers.dense import Dense
from aigc_jax.models import gpt

ENCODER_FIELDS = tuple(f.name for f in dataclasses.fields(gpt.Model)
                       if f.init and f.name not in ("parent", "name", "vocab_size",
                                                    "tie_embeddings"))
POOLING = ("mean", "last")


class Model(nn.Module):
  """Params {"encoder": <gpt.Model's, tied>, "head": ...}; logits [B, num_classes]."""
  encoder: Mapping = FrozenDict()  # gpt.Model fields; missing ones take its defaults
  vocab_size: int = 0  # 0: the tokenizer's (the classify task fills it from data.tokenizer)
  num_classes: int = 10
  pooling: str = "mean"
  dropout: float = 0.0  # before the head

  def __post_init__(self):
    cfg = dict(self.encoder)
    unknown = sorted(set(cfg) - set(ENCODER_FIELDS))
    if unknown:
      raise ConfigError(f"model.encoder has no field(s) {unknown}; valid: "
                        f"{list(ENCODER_FIELDS)} (vocab_size is model.vocab_size).")
    if self.pooling not in POOLING:
      raise ConfigError(f"model.pooling={self.pooling!r}; valid: {', '.join(POOLING)}.")
    if self.num_classes < 2:
      raise ConfigError(f"model.num_classes={self.num_classes}; a classifier needs >= 2.")
    object.__setattr__(self, "encoder", FrozenDict(cfg))
    super().__post_init__()

  def setup(self):
    if self.vocab_size <= 0:
      raise ConfigError("model.vocab_size is 0: set it, or data.tokenizer so it is taken from "
                        "the tokenizer.")
    self.backbone = gpt.Model(vocab_size=self.vocab_size, tie_embeddings=True, **self.encoder,
                              name="encoder")
    self.drop = nn.Dropout(self.dropout)
    self.head = Dense(self.num_classes, names=("embed", "classes"), name="head")

  def __call__(self, tokens_BT, *, train: bool = False):
    return self.head_and_states(tokens_BT, train=train)[0]

  def features(self, tokens_BT, *, train: bool = False):
    """Pooled final hidden states [B, width]."""
    return self.pool(tokens_BT, self.states(tokens_BT, train=train))

  def states(self, tokens_BT, *, train: bool = False):
    """Final hidden states [B, T, width] (what a cross-attending model reads)."""
    return self.backbone(tokens_BT, train=train, features=True).astype(jnp.float32)

  def head_and_states(self, tokens_BT, *, train: bool = False):
    """(__call__'s logits, states) from one pass of the backbone."""
    h_BTD = self.states(tokens_BT, train=train)
    feats = self.pool(tokens_BT, h_BTD)
    return self.head(self.drop(feats, deterministic=not train)), h_BTD

  def pool(self, tokens_BT, h_BTD):
    valid_BT = (tokens_BT >= 0).astype(jnp.float32)
    if self.pooling == "last":
      last_B = jnp.maximum(jnp.sum(valid_BT, axis=1).astype(jnp.int32) - 1, 0)
      return jnp.take_along_axis(h_BTD, last_B[:, None, None], axis=1)[:, 0]
    return jnp.sum(h_BTD * valid_BT[..., None], 1) / jnp.maximum(valid_BT.sum(1), 1.0)[:, None]
