"""Flax linen models; `config.model.name` picks `aigc_jax/models/<name>.py`, which defines `Model`."""

import dataclasses

import flax.linen as nn

from aigc_jax import registry
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
  return quantization_aware(model, qat) if qat else model


QAT = ("int8",)


def quantization_aware(model: nn.Module, qtype: str) -> nn.Module:
  """`model.qat="int8"`: quantisation-aware training with qwix, which intercepts every dense
  layer and convolution and fake-quantises its weights and inputs to int8 (straight-through
  gradients); the model's parameters and call signature are unchanged."""
  if qtype not in QAT:
    raise ConfigError(f"model.qat={qtype!r}; valid: {', '.join(QAT)}, or '' for none.")
  try:
    import qwix  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise ConfigError("model.qat needs qwix: pip install qwix.") from None
  rules = [qwix.QtRule(module_path=".*", weight_qtype=qtype, act_qtype=qtype)]
  return qwix.quantize_model(model, qwix.QtProvider(rules))
