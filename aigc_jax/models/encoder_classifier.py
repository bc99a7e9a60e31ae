"""A classifier on an autoencoder's encoder, for transfer learning from a pretrained AE / VAE.

`encoder` holds `autoencoder.Encoder`'s fields (kind, hidden, latent_dim, variational,
weight_init) and builds it under the same name, so the parameter subtree `encoder` has exactly
the structure and shapes of `autoencoder.Model`'s `encoder` and can be copied across. The head
(an optional MLP `head_hidden`, then a dense layer to the classes) reads the code, or the mean
of a variational encoder; `features` returns that code, which a linear probe would use.
"""

import dataclasses
from typing import Mapping, Sequence

import flax.linen as nn
from flax.core import FrozenDict

from aigc_jax.errors import ConfigError
from aigc_jax.layers.dense import INITS, Dense
from aigc_jax.models import autoencoder

ENCODER_FIELDS = ("kind", "hidden", "latent_dim", "variational", "weight_init")
_ENCODER_DEFAULTS = {f.name: f.default for f in dataclasses.fields(autoencoder.Encoder)
                     if f.name in ENCODER_FIELDS}


class Head(nn.Module):
  """Features -> (dropout, dense, ReLU) per `hidden` width -> dropout -> class logits."""
  hidden: Sequence[int] = ()
  num_classes: int = 10
  dropout: float = 0.0
  weight_init: str = "lecun"

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    for i, width in enumerate(self.hidden):
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
      x = nn.relu(Dense(width, names=("embed", "mlp"), init=self.weight_init,
                        name=f"hidden_{i}")(x))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return Dense(self.num_classes, names=("mlp", "classes"), init=self.weight_init,
                 name="logits")(x)


class Model(nn.Module):
  """Params {"encoder": <autoencoder.Encoder's>, "head": ...}; logits [B, num_classes]."""
  encoder: Mapping = FrozenDict()  # Encoder fields; missing ones take Encoder's defaults
  num_classes: int = 10
  head_hidden: Sequence[int] = ()
  dropout: float = 0.0
  weight_init: str = "lecun"  # the head's (and the encoder's unless encoder.weight_init is set)

  def __post_init__(self):
    cfg = dict(self.encoder)  # a dict, ConfigDict or FrozenDict
    unknown = sorted(set(cfg) - set(ENCODER_FIELDS))
    if unknown:
      raise ConfigError(f"model.encoder has no field(s) {unknown}; valid: {list(ENCODER_FIELDS)}.")
    cfg.setdefault("weight_init", self.weight_init)
    if "hidden" in cfg:
      cfg["hidden"] = tuple(cfg["hidden"])
    full = {**_ENCODER_DEFAULTS, **cfg}
    autoencoder.check(full["kind"], full["hidden"], full["latent_dim"],
                      weight_init=full["weight_init"], prefix="model.encoder.")
    if self.num_classes < 1 or not 0 <= self.dropout < 1 or self.weight_init not in INITS:
      raise ConfigError(f"model.num_classes must be >= 1, 0 <= model.dropout < 1 and "
                        f"model.weight_init in {INITS} (got {self.num_classes}, {self.dropout}, "
                        f"{self.weight_init!r}).")
    object.__setattr__(self, "encoder", FrozenDict(cfg))  # hashable module fields
    object.__setattr__(self, "head_hidden", tuple(self.head_hidden))
    super().__post_init__()

  def setup(self):
    # The field `encoder` keeps the config; the submodule takes the same name in the params.
    self.backbone = autoencoder.Encoder(**self.encoder, name="encoder")
    self.head = Head(self.head_hidden, self.num_classes, self.dropout, self.weight_init)

  def __call__(self, x, *, train: bool = False):
    feats = self.features(x)
    self.sow("intermediates", "features", feats)
    return self.head(feats, train=train)

  def features(self, x):
    """The encoder's code [B, latent_dim] (a variational encoder's mean)."""
    code = self.backbone(x)
    return code[0] if self.backbone.variational else code
