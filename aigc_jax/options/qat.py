"""Quantisation-aware training as an option: `config.qat = "int8"` builds the model with qwix,
which intercepts every dense layer and convolution and fake-quantises its weights and inputs to
int8 while training (straight-through gradients); parameters and call signature are unchanged.
Post-training int8 quantisation of a trained run is a tool: aigc_jax/tools/quantize.py.
"""

import flax.linen as nn

from aigc_jax.errors import ConfigError

DEFAULTS = {"qat": ""}  # "int8": quantisation-aware; "": off

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


def check(config) -> None:
  if config.qat and config.qat not in QAT:
    raise ConfigError(f"qat={config.qat!r}; valid: {', '.join(QAT)}, or '' for none.")


def configure_task(config):
  """The model section gets `qat` (in a copy of the config), so the model is built with it."""
  if not config.get("qat", "") or config.model.get("qat", ""):
    return config
  config = config.copy_and_resolve_references()
  with config.unlocked():
    config.model.qat = config.qat
  return config
