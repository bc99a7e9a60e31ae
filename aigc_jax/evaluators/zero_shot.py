"""Zero-shot classification by an image-text model: each class is described by prompts
(`templates` filled with each of the class's names), their text embeddings averaged into one
unit vector per class (CLIP's prompt ensembling), and an image takes the class whose vector is
nearest (cosine). Reports the ensemble's accuracy and each template's alone.

`classes`: one string per class, alternative names separated by "|" ("3|three"); empty: the
data set's label names. Prompts are tokenised when the evaluator is built, so a character the
tokenizer lacks or a prompt longer than data.seq_len is an error before compiling.
"""

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from aigc_jax import evaluators
from aigc_jax.data import sources, tokens
from aigc_jax.errors import ConfigError

DEFAULTS = {
    "templates": ("a photo of the digit {}",),  # "{}" is replaced by a class name
    "classes": (),
}


def check(name, ec, config) -> None:
  if not ec.templates or any("{}" not in t for t in ec.templates):
    raise ConfigError(f"evals.{name}.templates={tuple(ec.templates)}: give at least one "
                      "template, each with '{}' where the class name goes.")
  if not config.data.tokenizer:
    raise ConfigError(f"Evaluator {name!r} tokenises prompts: set data.tokenizer.")


def encode_prompts(texts, tokenizer, seq_len: int, what: str) -> np.ndarray:
  """[N, seq_len] ids padded with tokens.PAD; a text longer than seq_len is an error."""
  ids = np.full((len(texts), seq_len), tokens.PAD, np.int32)
  for i, text in enumerate(texts):
    x = tokenizer.encode(text)
    if len(x) > seq_len:
      raise ConfigError(f"{what} {text!r} is {len(x)} tokens, longer than data.seq_len="
                        f"{seq_len} (the text model's context); shorten it.")
    ids[i, :len(x)] = x
  return ids


def class_names(ec, config) -> list[list[str]]:
  if ec.classes:
    return [c.split("|") for c in ec.classes]
  label = sources.get_builder(config.data).info.features["label"]
  return [[n] for n in label.names]


def make(name, ec, ctx):
  ctx.require_labels(ec.split, name)
  names = class_names(ec, ctx.config)
  tok = tokens.get_tokenizer(ctx.config.data)
  prompts = [(t, k, tmpl.format(n)) for t, tmpl in enumerate(ec.templates)
             for k, alts in enumerate(names) for n in alts]
  ids = encode_prompts([p for _, _, p in prompts], tok, ctx.config.data.seq_len,
                       f"evals.{name} prompt")
  template_of = np.array([t for t, _, _ in prompts])
  class_of = np.array([k for _, k, _ in prompts])
  replicated = NamedSharding(ctx.mesh, PartitionSpec())
  embed_text = jax.jit(ctx.fn("embed_text", name),
                       in_shardings=(ctx.variables_sharding, replicated))
  embed_image = jax.jit(ctx.fn("embed_image", name),
                        in_shardings=(ctx.variables_sharding, ctx.batch_sharding))

  def class_vectors(text_PD, which):
    vecs = np.stack([text_PD[which & (class_of == k)].mean(0) for k in range(len(names))])
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True).clip(1e-12)

  def run(variables, step, rng):
    del step, rng
    text = evaluators.to_host(embed_text(variables, ids))
    image, labels = evaluators.host_features(embed_image, variables,
                                             ctx.batches(ec.split, ec.batch_size))
    out = {}
    for t in [None, *range(len(ec.templates))]:
      which = np.ones(len(prompts), bool) if t is None else template_of == t
      pred = np.argmax(image @ class_vectors(text, which).T, axis=1)
      out["accuracy" if t is None else f"template{t}_accuracy"] = float(np.mean(pred == labels))
    return out

  return run
