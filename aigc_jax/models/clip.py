"""An image encoder and a text encoder mapped into one embedding space (CLIP, Radford et al. 2021;
SigLIP, Zhai et al. 2023), with a learned logit scale and bias.

`image` is any model config whose module has `features(x)` (encoder_classifier's conv encoder,
vit); a dense layer `image_proj` maps its features to `embed_dim`. `text` holds `gpt.Model`'s
fields for a transformer over token ids (negative ids are padding), built as
`text_classifier.Model` under the name `text`: its pooled hidden states ("mean", or "last") and
its head, which here is the text projection. Embeddings are unit vectors; the similarity logits
are exp(logit_scale) * cosine + logit_bias (the bias only enters the sigmoid loss).
"""

import math
from collections.abc import Mapping

import flax.linen as nn
import jax.numpy as jnp
from flax.core import FrozenDict

from aigc_jax import models
from aigc_jax.errors import ConfigError
from aigc_jax.layers.dense import Dense
from aigc_jax.models import text_classifier

DEFAULT_IMAGE = FrozenDict({"name": "encoder_classifier",
                            "encoder": FrozenDict({"kind": "conv", "hidden": (32, 64, 64),
                                                   "latent_dim": 128})})
DEFAULT_TEXT = FrozenDict({"num_layers": 2, "num_heads": 4, "width": 64, "block_size": 64,
                           "causal": False})


def _frozen(d) -> FrozenDict:
  return FrozenDict({k: tuple(v) if isinstance(v, list) else
                     (_frozen(v) if isinstance(v, Mapping) else v) for k, v in dict(d).items()})


def unit(x):
  return x / jnp.linalg.norm(x, axis=-1, keepdims=True).clip(1e-12)


class Model(nn.Module):
  image: Mapping = DEFAULT_IMAGE
  text: Mapping = DEFAULT_TEXT
  vocab_size: int = 0  # 0: the tokenizer's (the task fills it from data.tokenizer)
  pooling: str = "mean"
  embed_dim: int = 64
  logit_scale_init: float = math.log(1 / 0.07)  # CLIP's; SigLIP's log(10) with bias -10
  logit_bias_init: float = 0.0

  def __post_init__(self):
    if "name" not in self.image:
      raise ConfigError("model.image needs a 'name': a model with a features method, e.g. "
                        "encoder_classifier (a conv encoder) or vit.")
    object.__setattr__(self, "image", _frozen(self.image))
    object.__setattr__(self, "text", _frozen(self.text))
    if self.embed_dim < 1:
      raise ConfigError(f"model.embed_dim={self.embed_dim} must be positive.")
    super().__post_init__()

  def setup(self):
    self.image_tower = models.get_model(dict(self.image), name="image")
    if not hasattr(self.image_tower, "features"):
      raise ConfigError(f"model.image {self.image['name']!r} has no features method; use "
                        "encoder_classifier (kind conv) or vit.")
    self.image_proj = Dense(self.embed_dim, names=("embed", "mlp"), name="image_proj")
    self.text_tower = text_classifier.Model(encoder=self.text, vocab_size=self.vocab_size,
                                            num_classes=self.embed_dim, pooling=self.pooling,
                                            name="text")
    self.logit_scale = self.param("logit_scale", nn.initializers.constant(self.logit_scale_init),
                                  ())
    self.logit_bias = self.param("logit_bias", nn.initializers.constant(self.logit_bias_init), ())

  @property
  def context(self) -> int:
    return dict(self.text).get("block_size", 256)

  def image_features(self, x):
    """The image tower's representation (what a linear probe reads)."""
    return self.image_tower.features(x)

  def embed_image(self, x):
    return unit(self.image_proj(self.image_features(x)).astype(jnp.float32))

  def embed_text(self, tokens_BT):
    return unit(self.text_tower(tokens_BT).astype(jnp.float32))

  def logits(self, u_ND, v_MD):
    """[N, M] image-text logits: exp(scale) * cosine + bias (scale capped at 100, as CLIP)."""
    scale = jnp.exp(jnp.minimum(self.logit_scale, math.log(100.0)))
    return scale * u_ND @ v_MD.T + self.logit_bias

  def __call__(self, x, tokens_BT, *, train: bool = False):
    del train
    return self.logits(self.embed_image(x), self.embed_text(tokens_BT))


class TextCondition(nn.Module):
  """Caption ids [B, L] -> [B, features]: the clip model's text tower (same parameters, so a
  clip run's `text` subtree loads into it), its unit embedding through a dense layer. A caption
  of padding only is "no caption" (classifier-free guidance's null) and gets a learned vector.

  context=True also returns what cross-attention reads: the tower's token states after a learned
  null token, [B, 1 + L, width], and how many of them are real, [B] (1 for "no caption", whose
  queries then attend to the null token alone)."""
  text: Mapping
  vocab_size: int
  embed_dim: int
  pooling: str
  features: int
  context: bool = False

  @nn.compact
  def __call__(self, tokens_BL):
    if tokens_BL.ndim != 2 or not jnp.issubdtype(tokens_BL.dtype, jnp.integer):
      raise ConfigError(f"A caption-conditioned model takes token ids [B, L]; got "
                        f"{tokens_BL.dtype} {tokens_BL.shape}.")
    tower = text_classifier.Model(encoder=self.text, vocab_size=self.vocab_size,
                                  num_classes=self.embed_dim, pooling=self.pooling, name="text")
    has_text = jnp.any(tokens_BL >= 0, axis=1, keepdims=True)
    # A row of padding only would attend to nothing (NaN, whose gradient survives the where
    # below); the tower reads zeros there instead, and the null vector replaces its output.
    safe = jnp.where(has_text, tokens_BL, jnp.zeros_like(tokens_BL))
    pooled, h_BLD = tower.head_and_states(safe)
    e = Dense(self.features, names=("mlp", "embed"), name="proj")(unit(pooled))
    null = self.param("null", nn.initializers.normal(0.02), (self.features,))
    e = jnp.where(has_text, e, null.astype(e.dtype))
    if not self.context:
      return e
    null_token = self.param("null_token", nn.initializers.normal(0.02), (h_BLD.shape[-1],))
    ctx = jnp.concatenate([jnp.broadcast_to(null_token, h_BLD[:, :1].shape), h_BLD], axis=1)
    # Captions are padded at the end (data.packing="examples"), so the real tokens lead.
    lengths = 1 + jnp.sum(tokens_BL >= 0, axis=1).astype(jnp.int32)
    return e, ctx, lengths


def check_condition(m) -> None:
  """Config checks of a denoiser's condition fields (num_classes, text)."""
  if m.num_classes < 0:
    raise ConfigError(f"model.num_classes={m.num_classes}; 0 for unconditional.")
  if m.num_classes and m.text:
    raise ConfigError("model.num_classes and model.text are both set: condition on class labels "
                      "or on captions, not both.")
  object.__setattr__(m, "text", _frozen(m.text))
  if getattr(m, "cross_attention_at", ()) and not m.text:
    raise ConfigError(f"model.cross_attention_at={tuple(m.cross_attention_at)} attends to a "
                      "caption's tokens, but model.text is empty: set model.text (a caption "
                      "model) or clear cross_attention_at.")


def embed_condition(m, cond, width: int, context: bool = False):
  """[B, width]: a denoiser's condition embedded, inside its compact method (params "label" or
  "caption"); None for an unconditional model. `cond` is labels [B] (num_classes, whose index
  num_classes is "no label") or caption ids [B, L] (text; all padding is "no caption").
  context=True (captions only): (that embedding, TextCondition's cross-attention context)."""
  if not (m.num_classes or m.text):
    return None
  if cond is None:
    raise ConfigError(f"This {type(m).__module__.rsplit('.', 1)[-1]} is conditional "
                      f"(model.num_classes={m.num_classes}, model.text set: {bool(m.text)}): "
                      "pass labels or caption ids (all -1 or index num_classes: none).")
  if m.num_classes:
    return nn.Embed(m.num_classes + 1, width, name="label")(cond)
  return TextCondition(m.text, m.vocab_size, m.text_dim, m.text_pooling, width, context,
                       name="caption")(cond)
