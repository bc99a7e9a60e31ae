"""Build-time document cleaning: "op|op(args)" over a corpus, with a report of what each op did.

Ops run in order over the whole corpus before it is split, so a duplicate can never sit on both
sides of a train/validation cut. Map ops rewrite documents (`nfkc`, `strip_control`,
`whitespace`); filter ops drop them (`min_length`, `max_length`, `dedupe_exact`, `dedupe_near`).
`parse` checks names and arguments at config time, before any file is read.
"""

import dataclasses
import hashlib
import re
import unicodedata
from typing import Callable

import numpy as np

from aigc_jax.data.ops import parse_calls
from aigc_jax.errors import ConfigError

OPS: dict[str, Callable] = {}


def op(fn):
  OPS[fn.__name__] = fn
  return fn


@dataclasses.dataclass
class Stage:
  """One op: `run(docs) -> (docs, removed index list or None, number of documents changed)`."""
  text: str
  run: Callable
  per_document: bool  # True: maps each document alone (can run on Beam workers)


def _mapper(f):
  def run(docs):
    out = [f(d) for d in docs]
    return out, None, sum(a != b for a, b in zip(docs, out))
  run.per_document = True
  return run


def _filter(keep_fn):
  def run(docs):
    keep = keep_fn(docs)
    return ([d for d, k in zip(docs, keep) if k],
            [i for i, k in enumerate(keep) if not k], 0)
  return run


@op
def nfkc():
  """Unicode NFKC: full-width, ligature and compatibility forms to their plain equivalents."""
  return _mapper(lambda d: unicodedata.normalize("NFKC", d))


_KEEP_CONTROL = frozenset("\n\t")


@op
def strip_control():
  """Drops control and format characters (categories Cc, Cf) except newline and tab."""
  def f(d):
    return "".join(c for c in d if c in _KEEP_CONTROL or unicodedata.category(c) not in ("Cc", "Cf"))
  return _mapper(f)


_SPACES = re.compile(r"[^\S\n]+")  # whitespace other than newline
_BLANK_LINES = re.compile(r"\n{3,}")


@op
def whitespace():
  """Runs of spaces/tabs -> one space, no trailing spaces, at most one blank line, stripped."""
  def f(d):
    d = _SPACES.sub(" ", d.replace("\r\n", "\n").replace("\r", "\n"))
    d = "\n".join(line.strip(" ") for line in d.split("\n"))
    return _BLANK_LINES.sub("\n\n", d).strip()
  return _mapper(f)


def _length(d: str, unit: str) -> int:
  if unit == "chars":
    return len(d)
  if unit == "words":
    return len(d.split())
  raise ConfigError(f"Length unit {unit!r} is not 'chars' or 'words'.")


@op
def min_length(n: int, unit: str = "chars"):
  """Drops documents shorter than n characters (or words)."""
  _length("", unit)
  return _filter(lambda docs: [_length(d, unit) >= n for d in docs])


@op
def max_length(n: int, unit: str = "chars"):
  """Drops documents longer than n characters (or words)."""
  _length("", unit)
  return _filter(lambda docs: [_length(d, unit) <= n for d in docs])


@op
def dedupe_exact():
  """Keeps the first of documents with the same SHA-256 (run after normalising ops)."""
  def keep(docs):
    seen, out = set(), []
    for d in docs:
      h = hashlib.sha256(d.encode("utf-8")).digest()
      out.append(h not in seen)
      seen.add(h)
    return out
  return _filter(keep)


def shingles(d: str, ngram: int, unit: str) -> list[bytes]:
  """The document's set of n-grams of lower-cased words (or characters), as bytes."""
  seq = d.lower().split() if unit == "words" else list(d)
  if len(seq) <= ngram:
    return [" ".join(seq).encode("utf-8")]
  return list({" ".join(seq[i:i + ngram]).encode("utf-8") for i in range(len(seq) - ngram + 1)})


@op
def dedupe_near(threshold: float = 0.5, num_perm: int = 128, ngram: int = 5, unit: str = "words",
                seed: int = 1):
  """Drops a document whose estimated Jaccard similarity (MinHash over n-gram shingles) to an
  earlier kept one is >= threshold. LSH finds the candidates in sub-linear time; each candidate is
  confirmed with the MinHash estimate, so LSH's false positives never remove a document."""
  if not 0.0 < threshold < 1.0:
    raise ConfigError(f"dedupe_near threshold must be in (0, 1), got {threshold}.")
  if unit not in ("words", "chars"):
    raise ConfigError(f"dedupe_near unit {unit!r} is not 'words' or 'chars'.")

  def keep(docs):
    from datasketch import MinHash, MinHashLSH  # imported when used: pure Python, but optional
    # A lower LSH threshold widens the candidate net; the estimate below decides.
    lsh = MinHashLSH(threshold=max(threshold - 0.2, 0.05), num_perm=num_perm)
    kept, out = {}, []
    sketches = MinHash.generator((shingles(d, ngram, unit) for d in docs), num_perm=num_perm,
                                 seed=seed)  # one set of permutations for all documents
    for i, m in enumerate(sketches):
      dup = any(m.jaccard(kept[j]) >= threshold for j in lsh.query(m))
      out.append(not dup)
      if not dup:
        kept[i] = m
        lsh.insert(i, m)
    return out
  return _filter(keep)


def parse(spec: str) -> list[Stage]:
  """"nfkc|dedupe_near(0.8)" -> stages; unknown ops or bad arguments raise ConfigError."""
  return [Stage(text, fn, getattr(fn, "per_document", False))
          for text, fn in parse_calls(spec, OPS, "cleaning op")]


def run(docs: list[str], spec: str) -> tuple[list[str], dict]:
  """Applies the stages in order; returns the kept documents and a report of every stage."""
  report = {"pipeline": spec, "documents_in": len(docs), "characters_in": sum(map(len, docs)),
            "stages": []}
  for stage in parse(spec):
    before = len(docs)
    docs, removed, changed = stage.run(docs)
    entry = {"op": stage.text, "documents_in": before}
    if removed is None:
      entry["changed"] = int(changed)
    else:
      entry["removed"] = len(removed)
    report["stages"].append(entry)
  report.update(documents_out=len(docs), characters_out=sum(map(len, docs)),
                bytes_out=sum(len(d.encode("utf-8")) for d in docs),
                words_out=int(np.sum([len(d.split()) for d in docs])))
  return docs, report


def describe(report: dict) -> str:
  """One line per stage, for logs."""
  lines = [f"cleaning {report['documents_in']} documents: {report['pipeline']}"]
  for s in report["stages"]:
    what = f"removed {s['removed']}" if "removed" in s else f"changed {s['changed']}"
    lines.append(f"  {s['op']:<32} {what}")
  lines.append(f"  -> {report['documents_out']} documents, {report['characters_out']} characters, "
               f"{report['words_out']} words")
  return "\n".join(lines)
