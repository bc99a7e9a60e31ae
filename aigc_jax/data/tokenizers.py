"""Tokenizers that round-trip exactly: characters (nanoGPT's vocabulary), bytes, and subwords.

Each is one JSON file (a SentencePiece model is embedded in it), named after the tokenizer:
`char`, `byte`, `bpe:<vocab>` or `unigram:<vocab>`. Trained ones record a fingerprint of the
text they were fitted on, so a tokenizer file beside a different data set is refused instead of
silently producing wrong ids. End of text (EOT) separates documents in a token stream.
"""

import base64
import hashlib
import io
import json
import os
import re
from typing import Iterable

from etils import epath
import numpy as np

from aigc_jax import writers
from aigc_jax.errors import ConfigError

EOT = "<|endoftext|>"
MASK = "<|mask|>"  # masked language models' [MASK]
WORKDIR_FILE = "tokenizer.json"  # a trained text run's tokenizer, in its workdir
_NAME = re.compile(r"^(char|byte|(bpe|unigram):(\d+))$")


class CharTokenizer:
  """Vocabulary = the sorted set of characters of the training text (nanoGPT), then EOT when
  the text has several documents (one document needs no separator, so nanoGPT's 65 stays 65)."""

  kind = "char"

  def __init__(self, chars: str, eot: bool = False):
    self.chars = chars
    self.eot = len(chars) if eot else None
    self._codes = np.array([ord(c) for c in chars], np.uint32)  # sorted: searchsorted encodes

  @classmethod
  def fit(cls, texts: str | Iterable[str]) -> "CharTokenizer":
    texts = [texts] if isinstance(texts, str) else texts
    chars, n = set(), 0
    for t in texts:  # one pass: texts may be a lazy stream of documents
      chars.update(t)
      n += 1
    return cls("".join(sorted(chars)), eot=n > 1)

  @property
  def vocab_size(self) -> int:
    return len(self.chars) + (self.eot is not None)

  def encode(self, text: str) -> np.ndarray:
    codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    ids = np.searchsorted(self._codes, codes).astype(np.int32)
    bad = (ids >= len(self.chars)) | (self._codes[np.minimum(ids, len(self.chars) - 1)] != codes)
    if bad.any():
      missing = sorted({chr(c) for c in codes[bad]})
      raise ConfigError(f"Characters {''.join(missing)[:20]!r} are not in the tokenizer's "
                        f"vocabulary of {self.vocab_size}: this tokenizer was fitted on other "
                        "text. Fit it on this data set's training split (data.tokenizer='char').")
    return ids

  def decode(self, ids) -> str:
    return "".join(self.chars[i] for i in np.asarray(ids, np.int64) if i < len(self.chars))

  def to_json(self) -> dict:
    return {"kind": self.kind, "chars": self.chars, "eot": self.eot is not None}


class ByteTokenizer:
  """UTF-8 bytes 0..255, then special tokens (EOT first)."""

  kind = "byte"

  def __init__(self, specials: tuple[str, ...] = (EOT,)):
    self.specials = tuple(specials)
    self.eot = self.special_id(EOT) if EOT in self.specials else None

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


class SentencePieceTokenizer:
  """BPE or unigram subwords trained with sentencepiece, set up to round-trip any text exactly:
  no normalisation, whitespace kept as is, unseen characters falling back to UTF-8 bytes."""

  kind = "sentencepiece"

  def __init__(self, model: bytes):
    import sentencepiece as spm  # optional until a subword tokenizer is asked for
    self.model = model
    self._sp = spm.SentencePieceProcessor(model_proto=model)
    self.eot = self._sp.piece_to_id(EOT)

  @classmethod
  def train(cls, texts: Iterable[str], vocab_size: int, model_type: str) -> "SentencePieceTokenizer":
    import sentencepiece as spm
    lines = (line for t in texts for line in t.split("\n") if line)
    out = io.BytesIO()
    try:
      spm.SentencePieceTrainer.train(
          sentence_iterator=lines, model_writer=out, vocab_size=vocab_size,
          model_type=model_type, normalization_rule_name="identity",
          remove_extra_whitespaces=False, add_dummy_prefix=False, byte_fallback=True,
          character_coverage=0.9995, split_digits=True, allow_whitespace_only_pieces=True,
          user_defined_symbols=["\n"], control_symbols=[EOT], unk_id=0, bos_id=-1, eos_id=-1,
          pad_id=-1, input_sentence_size=2_000_000, shuffle_input_sentence=True,
          num_threads=os.cpu_count() or 1, minloglevel=2)
    except RuntimeError as e:
      raise ConfigError(f"sentencepiece could not train a {model_type} vocabulary of "
                        f"{vocab_size}: {e}. Choose another vocabulary size.") from None
    return cls(out.getvalue())

  @property
  def vocab_size(self) -> int:
    return self._sp.get_piece_size()

  def encode(self, text: str) -> np.ndarray:
    return np.asarray(self._sp.encode(text), np.int32)

  def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
    return [np.asarray(x, np.int32) for x in self._sp.encode(texts, num_threads=os.cpu_count())]

  def decode(self, ids) -> str:
    return self._sp.decode([int(i) for i in ids if int(i) != self.eot])

  def to_json(self) -> dict:
    return {"kind": self.kind, "model": base64.b64encode(self.model).decode("ascii")}


class WithSpecials:
  """Another tokenizer plus special tokens numbered after its vocabulary (e.g. a masked LM's
  [MASK]): text encodes exactly as before, so ids the base model learned keep their meaning."""

  kind = "specials"

  def __init__(self, base, specials: tuple[str, ...]):
    self.base, self.specials = base, tuple(specials)
    self.eot = base.eot

  @property
  def vocab_size(self) -> int:
    return self.base.vocab_size + len(self.specials)

  def special_id(self, name: str) -> int:
    return self.base.vocab_size + self.specials.index(name)

  def encode(self, text: str) -> np.ndarray:
    return self.base.encode(text)

  def decode(self, ids) -> str:
    ids = np.asarray(ids, np.int64)
    return self.base.decode(ids[ids < self.base.vocab_size])

  def to_json(self) -> dict:
    return {"kind": self.kind, "base": self.base.to_json(), "specials": list(self.specials)}


def special_id(tokenizer, name: str) -> int | None:
  """The id of special token `name`, or None when the tokenizer has none."""
  if name in getattr(tokenizer, "specials", ()):
    return tokenizer.special_id(name)
  if tokenizer.kind == "sentencepiece":
    i = tokenizer._sp.piece_to_id(name)  # pylint: disable=protected-access
    return i if tokenizer._sp.id_to_piece(i) == name else None  # pylint: disable=protected-access
  return None


def with_special(tokenizer, name: str):
  """(tokenizer, id of `name`): the tokenizer itself when it has the token, else it extended
  by one id (its vocabulary grows by one)."""
  i = special_id(tokenizer, name)
  if i is not None:
    return tokenizer, i
  out = WithSpecials(tokenizer, (name,))
  return out, out.special_id(name)


def check_name(name: str) -> None:
  """Config-time check of a tokenizer name (or a path to a tokenizer file)."""
  if name.endswith(".json") or _NAME.match(name):
    return
  raise ConfigError(f"Unknown tokenizer {name!r}; valid: char, byte, bpe:<vocab size>, "
                    "unigram:<vocab size>, or a path to a tokenizer .json file.")


def train(name: str, texts: Iterable[str]):
  """A new tokenizer of kind `name`, fitted on `texts` (the training split's documents)."""
  check_name(name)
  m = _NAME.match(name)
  if m.group(1) == "char":
    return CharTokenizer.fit(texts)
  if m.group(1) == "byte":
    return ByteTokenizer()
  return SentencePieceTokenizer.train(texts, int(m.group(3)), m.group(2))


def fingerprint(texts: Iterable[str]) -> str:
  h = hashlib.sha256()
  for t in texts:
    h.update(t.encode("utf-8"))
    h.update(b"\x00")
  return h.hexdigest()[:16]


def digest(tokenizer) -> str:
  """Content hash: token caches are keyed by it, so a replaced tokenizer never reuses them."""
  return hashlib.sha256(json.dumps(tokenizer.to_json(), sort_keys=True).encode()).hexdigest()[:8]


def save(tokenizer, path: str, *, name: str = "", data_fingerprint: str = "") -> None:
  spec = {**tokenizer.to_json(), "name": name, "data_fingerprint": data_fingerprint}
  writers.atomic_write(path, json.dumps(spec))  # never a half-written tokenizer beside the data


def load(path: str, *, data_fingerprint: str = ""):
  """Loads a tokenizer file; with `data_fingerprint`, refuses one fitted on other text."""
  try:
    spec = json.loads(epath.Path(path).read_text())
  except FileNotFoundError:
    raise ConfigError(f"No tokenizer file at {path}.") from None
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ConfigError(f"Tokenizer file {path} is not valid JSON ({e}); delete it and it will be "
                      "retrained.") from None
  trained_on = spec.get("data_fingerprint", "")
  if data_fingerprint and trained_on and trained_on != data_fingerprint:
    raise ConfigError(
        f"Tokenizer file {path} does not match the data: it was fitted on text with fingerprint "
        f"{trained_on}, but this data set's training split has {data_fingerprint}. Delete the "
        "file to train one on this data, or use the data set it was trained on.")
  return from_json(spec, path)


def from_json(spec: dict, path: str = "the tokenizer file"):
  kind = spec.get("kind")
  if kind == "specials":
    return WithSpecials(from_json(spec["base"], path), tuple(spec["specials"]))
  if kind == "char":
    return CharTokenizer(spec["chars"], eot=spec.get("eot", False))
  if kind == "byte":
    return ByteTokenizer(tuple(spec["specials"]))
  if kind == "sentencepiece":
    return SentencePieceTokenizer(base64.b64decode(spec["model"]))
  raise ConfigError(f"Tokenizer file {path} has unknown kind {kind!r}.")


def file_name(name: str) -> str:
  return "tokenizer-" + name.replace(":", "-") + ".json"


def for_dataset(name: str, dataset_dir: str, train_texts, data_fingerprint: str):
  """The tokenizer `name` stored beside a prepared data set, trained there on first use.

  `train_texts` is a callable returning the training split's documents (only read to train).
  A path to a .json file loads that file instead, checked against the data's fingerprint.
  """
  check_name(name)
  if name.endswith(".json"):
    return load(name, data_fingerprint=data_fingerprint)
  path = os.path.join(dataset_dir, file_name(name))
  if os.path.exists(path):
    return load(path, data_fingerprint=data_fingerprint)
  tok = train(name, train_texts())
  # Bytes fit any text; the others only the text they were fitted on.
  save(tok, path, name=name, data_fingerprint="" if tok.kind == "byte" else data_fingerprint)
  return tok
