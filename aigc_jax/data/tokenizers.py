"""Tokenizers that round-trip exactly: characters (nanoGPT's vocabulary) and bytes.

Both save to and load from a small JSON file, so a workdir or a prepared data set can carry the
exact vocabulary it was trained with.
"""

import json

import numpy as np

from aigc_jax.errors import ConfigError


class CharTokenizer:
  """Vocabulary = the sorted set of characters of the text it is fitted on (nanoGPT)."""

  kind = "char"

  def __init__(self, chars: str):
    self.chars = chars
    self._index = {c: i for i, c in enumerate(chars)}

  @classmethod
  def fit(cls, text: str) -> "CharTokenizer":
    return cls("".join(sorted(set(text))))

  @property
  def vocab_size(self) -> int:
    return len(self.chars)

  def encode(self, text: str) -> np.ndarray:
    try:
      return np.fromiter((self._index[c] for c in text), np.int32, len(text))
    except KeyError as e:
      raise ConfigError(f"Character {e.args[0]!r} is not in the tokenizer's vocabulary of "
                        f"{self.vocab_size}; the text must use the training corpus's characters."
                        ) from None

  def decode(self, ids) -> str:
    return "".join(self.chars[int(i)] for i in ids)

  def to_json(self) -> dict:
    return {"kind": self.kind, "chars": self.chars}


class ByteTokenizer:
  """UTF-8 bytes 0..255, then special tokens (end of text first)."""

  kind = "byte"

  def __init__(self, specials: tuple[str, ...] = ("<|endoftext|>",)):
    self.specials = tuple(specials)

  @property
  def vocab_size(self) -> int:
    return 256 + len(self.specials)

  def special_id(self, name: str) -> int:
    return 256 + self.specials.index(name)

  def encode(self, text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32)

  def decode(self, ids) -> str:
    data = bytes(int(i) for i in ids if int(i) < 256)
    return data.decode("utf-8", errors="replace")

  def to_json(self) -> dict:
    return {"kind": self.kind, "specials": list(self.specials)}


def save(tokenizer, path: str) -> None:
  with open(path, "w") as f:
    json.dump(tokenizer.to_json(), f)


def load(path: str):
  try:
    with open(path) as f:
      spec = json.load(f)
  except FileNotFoundError:
    raise ConfigError(f"No tokenizer file at {path}.") from None
  except json.JSONDecodeError as e:
    raise ConfigError(f"Tokenizer file {path} is not valid JSON ({e}).") from None
  if spec.get("kind") == "char":
    return CharTokenizer(spec["chars"])
  if spec.get("kind") == "byte":
    return ByteTokenizer(tuple(spec["specials"]))
  raise ConfigError(f"Tokenizer file {path} has unknown kind {spec.get('kind')!r}.")
