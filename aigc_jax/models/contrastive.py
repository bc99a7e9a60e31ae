"""An encoder with a projection head, for contrastive learning (SimCLR, Chen et al. 2020).

`backbone` is any model config whose module has a `features(x)` method (e.g. cnn1d, whose
flattened convolutions give MNIST-1D's 125-d representation); its parameters sit under
"encoder", the projector's under "projector": Dense + ReLU per `projector` width, the last one
linear. The loss reads the projection; probes and fine-tuning read `features` (the
representation before the projector, which transfers better).
"""

from collections.abc import Mapping
from typing import Sequence

import flax.linen as nn
from flax.core import FrozenDict

from aigc_jax import models
from aigc_jax.errors import ConfigError
from aigc_jax.layers.dense import Dense


class Model(nn.Module):
  backbone: Mapping = FrozenDict({"name": "cnn1d"})
  projector: Sequence[int] = (125, 16)
  weight_init: str = "lecun"

  def __post_init__(self):
    backbone = dict(self.backbone)
    if "name" not in backbone:
      raise ConfigError("model.backbone needs a 'name' (a model with a features method, e.g. "
                        "cnn1d).")
    object.__setattr__(self, "backbone", FrozenDict(
        {k: tuple(v) if isinstance(v, list) else v for k, v in backbone.items()}))
    object.__setattr__(self, "projector", tuple(self.projector))
    if not self.projector or min(self.projector) < 1:
      raise ConfigError(f"model.projector={self.projector}: give at least one positive width.")
    super().__post_init__()

  def setup(self):
    self.encoder = models.get_model(dict(self.backbone))
    if not hasattr(self.encoder, "features"):
      raise ConfigError(f"model.backbone {self.backbone['name']!r} has no features method; "
                        "pick an encoder such as cnn1d or encoder_classifier.")
    self.layers = [Dense(w, names=("embed", "mlp"), init=self.weight_init, name=f"projector_{i}")
                   for i, w in enumerate(self.projector)]

  def features(self, x):
    return self.encoder.features(x)

  def project(self, h):
    for i, layer in enumerate(self.layers):
      h = layer(h)
      if i < len(self.layers) - 1:
        h = nn.relu(h)
    return h

  def __call__(self, x, *, train: bool = False):
    del train
    return self.project(self.features(x))
