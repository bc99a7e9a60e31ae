"""Language-model input: a text data set -> one token stream per split -> sequences of L + 1.

Each split's documents are tokenised once, joined with the end-of-text token and stored as a flat
array beside the prepared data set (`tokens-<tokenizer>-<digest>-<split>.bin`, read as a memmap,
so corpora larger than memory work). An example is `seq_len + 1` consecutive tokens, returned as
`input` (the first L) and `target` (the last L):
- `packed`: example i starts at i * L, so every token is a target exactly once per epoch;
- `windows`: every start offset is an example, shuffled (nanoGPT's random windows, drawn without
  replacement and resumable).
Evaluation splits are always packed and cover every token: the last, partial sequence is padded
and its padding masked out by `target_mask`.
- `examples`: each record is one example (text classification, captioned images): the tokens of
  its `data.text_key` feature as `data.tokens_key` (`input`; comma-separated lists of equal
  length tokenise several texts, e.g. a caption and its hard negative, the tokenizer being
  trained on the first), the first `seq_len` (or an error
  with `data.truncate=False`), padded at the end with PAD (-1; models treat negative ids as
  padding), and the record's other numeric features (`label`, an image) alongside, through the
  preprocessing ops.
"""

import json
import os

import numpy as np

from aigc_jax import writers
from aigc_jax.data import ops, sources, splits, tokenizers
from aigc_jax.data.builders.text_files import REPORT
from aigc_jax.errors import ConfigError

PACKING = ("packed", "windows", "examples")
PAD = -1
_CHUNK = 1024  # documents tokenised at a time


def validate(data_config) -> None:
  tokenizers.check_name(data_config.tokenizer)
  if data_config.seq_len <= 0:
    raise ConfigError(f"data.seq_len must be positive, got {data_config.seq_len}.")
  if data_config.packing not in PACKING:
    raise ConfigError(f"data.packing={data_config.packing!r}; valid: {', '.join(PACKING)}.")
  text_keys(data_config)


def text_keys(data_config) -> list[tuple[str, str]]:
  """[(text feature, name of its token ids)] from data.text_key and data.tokens_key."""
  texts, ids = (data_config.text_key.split(","), data_config.tokens_key.split(","))
  if len(texts) != len(ids) or not all(map(str.strip, texts + ids)):
    raise ConfigError(f"data.text_key={data_config.text_key!r} and data.tokens_key="
                      f"{data_config.tokens_key!r} must name as many features each, comma-"
                      "separated (e.g. 'caption,negative' and 'caption,negative').")
  if len(texts) > 1 and data_config.packing != "examples":
    raise ConfigError("Several data.text_key features need data.packing='examples'.")
  return [(t.strip(), k.strip()) for t, k in zip(texts, ids)]


def _texts(builder, split: str, key: str = "text"):
  """The split's documents (feature `key`) as str, read lazily (a corpus need not fit in
  memory)."""
  source = sources.get_source(builder, split)
  for i in range(len(source)):
    rec = source[i]
    if key not in rec:
      raise ConfigError(f"Data set {builder.name!r} has no {key!r} feature (it has {sorted(rec)});"
                        " data.tokenizer needs a text data set such as text_files/<folder>, or "
                        "data.text_key naming the text feature (e.g. 'caption').")
    yield _decode(rec[key])


def _chunks(iterable, n: int):
  chunk = []
  for x in iterable:
    chunk.append(x)
    if len(chunk) == n:
      yield chunk
      chunk = []
  if chunk:
    yield chunk


def _fingerprint(builder, split: str, key: str = "text") -> str:
  """Fingerprint of a split's text, cached beside the (immutable) prepared data set."""
  name = f"fingerprint-{split}.txt" if key == "text" else f"fingerprint-{split}-{key}.txt"
  path = os.path.join(builder.data_dir, name)
  if os.path.exists(path):
    with open(path) as f:
      return f.read().strip()
  fp = tokenizers.fingerprint(_texts(builder, split, key))
  writers.atomic_write(path, fp.encode())
  return fp


def get_tokenizer(data_config, builder=None):
  """The configured tokenizer of a text data set (trained beside it on first use)."""
  builder = builder or sources.get_builder(data_config)
  train, key = data_config.train_split, text_keys(data_config)[0][0]
  return tokenizers.for_dataset(data_config.tokenizer, builder.data_dir,
                                lambda: _texts(builder, train, key),
                                _fingerprint(builder, train, key))


def token_stream(builder, tokenizer, name: str, split: str) -> tuple[np.memmap, dict]:
  """The split's documents as one EOT-separated token array, built once and memory-mapped, and
  its meta data (token, document and character counts)."""
  stem = f"tokens-{name.replace(':', '-').replace('/', '_')}-{tokenizers.digest(tokenizer)}-{split}"
  path = os.path.join(builder.data_dir, stem + ".bin")
  meta_path = os.path.join(builder.data_dir, stem + ".json")
  if not os.path.exists(meta_path):  # the meta file is written last: its presence = complete
    _write_stream(builder, tokenizer, name, split, path, meta_path)
  with open(meta_path) as f:
    meta = json.load(f)
  if os.path.getsize(path) != meta["count"] * np.dtype(meta["dtype"]).itemsize:
    raise ConfigError(f"Token file {path} does not match {meta_path}; delete both to rebuild.")
  return np.memmap(path, dtype=meta["dtype"], mode="r", shape=(meta["count"],)), meta


def _write_stream(builder, tokenizer, name, split, path, meta_path):
  dtype = np.uint16 if tokenizer.vocab_size <= 2**16 else np.uint32
  tmp = f"{path}.tmp-{os.getpid()}"
  count = documents = characters = 0
  enc = getattr(tokenizer, "encode_batch", None)
  with open(tmp, "wb") as f:
    for chunk in _chunks(_texts(builder, split), _CHUNK):
      ids = enc(chunk) if enc else [tokenizer.encode(t) for t in chunk]
      for x in ids:
        if documents > 0:
          if tokenizer.eot is None:
            raise ConfigError(f"Tokenizer {tokenizer.kind} has no end-of-text token but split "
                              f"{split!r} has several documents; refit it on this data set.")
          f.write(np.asarray([tokenizer.eot], dtype).tobytes())
          count += 1
        f.write(np.asarray(x, dtype).tobytes())
        count += len(x)
        documents += 1
      characters += sum(map(len, chunk))
  os.replace(tmp, path)
  meta = {"count": count, "dtype": np.dtype(dtype).name, "documents": documents,
          "characters": characters, "tokenizer": tokenizers.digest(tokenizer),
          "vocab_size": tokenizer.vocab_size}
  writers.atomic_write(meta_path, json.dumps(meta, indent=1).encode())
  _report_tokens(builder.data_dir, name, split, count)


def _report_tokens(dataset_dir: str, name: str, split: str, count: int) -> None:
  """Adds the split's token count to the cleaning report, where there is one."""
  path = os.path.join(dataset_dir, REPORT)
  if not os.path.exists(path):
    return
  with open(path) as f:
    report = json.load(f)
  report.setdefault("tokens_out", {}).setdefault(name, {})[split] = count
  writers.atomic_write(path, json.dumps(report, indent=1).encode())


class TokenSplit:
  """Sequences of `seq_len + 1` tokens from a stream, read through `splits.Split`."""

  def __init__(self, stream: np.ndarray, seq_len: int, packing: str, pad_last: bool = False,
               characters: int = 0):
    if len(stream) < seq_len + 1:
      raise ConfigError(f"The split has {len(stream)} tokens, fewer than data.seq_len + 1 = "
                        f"{seq_len + 1}; lower data.seq_len.")
    self.stream, self.seq_len, self.packing = stream, seq_len, packing
    self.characters = characters or len(stream)  # of the text the tokens encode
    self.pad_last = pad_last and packing == "packed"
    self._arange = np.arange(seq_len + 1)

  def __len__(self) -> int:
    n, L = len(self.stream), self.seq_len
    if self.packing == "windows":
      return n - L
    return -(-(n - 1) // L) if self.pad_last else (n - 1) // L

  @property
  def num_tokens(self) -> int:
    return len(self.stream)

  def example_spec(self) -> dict:
    spec = {"input": ((self.seq_len,), np.dtype(np.int32)),
            "target": ((self.seq_len,), np.dtype(np.int32))}
    if self.pad_last:
      spec["target_mask"] = ((self.seq_len,), np.dtype(bool))
    return spec

  def load(self, indices) -> dict:
    idx = np.asarray(indices, np.int64)
    starts = idx * self.seq_len if self.packing == "packed" else idx
    pos = starts[:, None] + self._arange
    valid = pos < len(self.stream)
    rows = self.stream[np.minimum(pos, len(self.stream) - 1)].astype(np.int32)
    out = {"input": rows[:, :-1], "target": rows[:, 1:]}
    if self.pad_last:
      out["target_mask"] = valid[:, 1:]
    return out


def _decode(t) -> str:
  return t.decode("utf-8") if isinstance(t, bytes) else str(t)


def example_fn(tokenizer, data_config, split: str):
  """record -> {tokens_key: [seq_len] ids padded with PAD, its other numeric features}, then the
  preprocessing ops (images beside captions)."""
  keys, seq_len = text_keys(data_config), data_config.seq_len
  preprocess = ops.parse(data_config.preprocess)

  def encode(rec, key):
    if key not in rec:
      raise ConfigError(f"Split {split!r} has no {key!r} feature (it has {sorted(rec)}): set "
                        "data.text_key to the text feature to tokenise.")
    text = _decode(rec[key])
    x = tokenizer.encode(text)
    if not len(x):
      raise ConfigError(f"A record of split {split!r} encodes to no tokens ({text!r}); drop "
                        "empty texts.")
    if len(x) > seq_len and not data_config.truncate:
      raise ConfigError(f"{key} {text!r} of split {split!r} is {len(x)} tokens, longer than "
                        f"data.seq_len={seq_len}: raise data.seq_len (and the text model's "
                        "context), or set data.truncate=True to keep its first tokens.")
    ids = np.full(seq_len, PAD, np.int32)
    ids[:min(len(x), seq_len)] = x[:seq_len]
    return ids

  def fn(rec):
    out = {k: v for k, v in rec.items() if np.asarray(v).dtype.kind in "biuf"}
    out.update({ids: encode(rec, key) for key, ids in keys})
    return preprocess(out)

  return fn


def load_split(data_config, split: str):
  validate(data_config)
  builder = sources.get_builder(data_config)
  tok = get_tokenizer(data_config, builder)
  if data_config.packing == "examples":
    source, fn = sources.get_source(builder, split), example_fn(tok, data_config, split)
    if not len(source):
      raise ConfigError(f"Split {split!r} of {builder.name!r} is empty.")
    if data_config.cache:
      return splits.Records(splits.to_columns(source, fn), None, fn)
    return splits.Records(None, source, fn)
  stream, meta = token_stream(builder, tok, data_config.tokenizer, split)
  if split == data_config.train_split:
    return TokenSplit(stream, data_config.seq_len, data_config.packing,
                      characters=meta["characters"])
  return TokenSplit(stream, data_config.seq_len, "packed", pad_last=True,
                    characters=meta["characters"])
