"""Flax linen models; `config.model.name` picks `aigc_jax/models/<name>.py`, which defines `Model`."""

import dataclasses

import flax.linen as nn

from aigc_jax import registry
from aigc_jax.options import qat as qat_option
from aigc_jax.errors import ConfigError


def fields(name: str) -> set:
  """The configurable fields of model `name`."""
  module = registry.import_member("aigc_jax.models", name, "model")
  return {f.name for f in dataclasses.fields(module.Model) if f.init} - {"parent", "name"}


def get_model(model_config, **overrides) -> nn.Module:
  """Builds `Model(**kwargs)` from the config; unknown keys list the model's valid fields."""
  kwargs = dict(model_config)
  name = kwargs.pop("name")
  qat = kwargs.pop("qat", "")
  module = registry.import_member("aigc_jax.models", name, "model")
  valid = fields(name)
  unknown = sorted(set(kwargs) - valid)
  if unknown:
    raise ConfigError(f"Model {name!r} has no field(s) {unknown}; valid fields: {sorted(valid)}.")
  kwargs.update(overrides)
  model = module.Model(**kwargs)
  return qat_option.quantization_aware(model, qat) if qat else model
