"""Per-document cleaning ops: each sees one document and either rewrites it or names why to drop it.

An op is a factory registered with `@op`; `clean.parse` calls it with the spec's literal
arguments (so bad names and out-of-range thresholds fail at config time) and gets a `DocOp`.
Because an op sees one document at a time it runs in streaming worker processes and on Beam
workers alike. Quality filters and PII scrubbing live in aigc_jax/data/quality.py.
"""

import dataclasses
import re
import unicodedata
from typing import Callable, Optional

from aigc_jax.errors import ConfigError

OPS: dict[str, Callable[..., "DocOp"]] = {}


def op(fn):
  OPS[fn.__name__] = fn
  return fn


@dataclasses.dataclass(frozen=True)
class DocOp:
  """kind 'map': fn(text) -> new text. kind 'filter': fn(text) -> drop reason, or None to keep."""
  kind: str
  fn: Callable[[str], Optional[str]]


def mapper(fn: Callable[[str], str]) -> DocOp:
  return DocOp("map", fn)


def doc_filter(fn: Callable[[str], Optional[str]]) -> DocOp:
  return DocOp("filter", fn)


def check_range(op_name: str, arg: str, value, lo=None, hi=None, lo_open=False, hi_open=False):
  """ConfigError unless lo <= value <= hi (strict where *_open), naming the op and the argument."""
  bad = isinstance(value, bool) or not isinstance(value, (int, float))
  bad = bad or ((lo is not None and (value <= lo if lo_open else value < lo))
         or (hi is not None and (value >= hi if hi_open else value > hi)))
  if bad:
    lo_s = "-inf" if lo is None else lo
    hi_s = "inf" if hi is None else hi
    raise ConfigError(f"{op_name}: {arg}={value!r} is out of range; it must be in "
                      f"{'(' if lo_open else '['}{lo_s}, {hi_s}{')' if hi_open else ']'}.")


@op
def nfkc():
  """Unicode NFKC: full-width, ligature and compatibility forms to their plain equivalents."""
  return mapper(lambda d: unicodedata.normalize("NFKC", d))


_KEEP_CONTROL = frozenset("\n\t")


@op
def strip_control():
  """Drops control and format characters (categories Cc, Cf) except newline and tab."""
  def f(d):
    if d.isprintable():  # fast path: nothing to strip (isprintable is False for \n and \t too)
      return d
    return "".join(c for c in d
                   if c in _KEEP_CONTROL or unicodedata.category(c) not in ("Cc", "Cf"))
  return mapper(f)


_SPACES = re.compile(r"[^\S\n]+")  # whitespace other than newline
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING = re.compile(r" *\n *")


@op
def whitespace():
  """Runs of spaces/tabs -> one space, no trailing spaces, at most one blank line, stripped."""
  def f(d):
    d = _SPACES.sub(" ", d.replace("\r\n", "\n").replace("\r", "\n"))
    return _BLANK_LINES.sub("\n\n", _TRAILING.sub("\n", d)).strip()
  return mapper(f)


def _length_fn(unit: str):
  if unit == "chars":
    return len
  if unit == "words":
    return lambda d: len(d.split())
  raise ConfigError(f"Length unit {unit!r} is not 'chars' or 'words'.")


@op
def min_length(n: int, unit: str = "chars"):
  """Drops documents shorter than n characters (or words)."""
  check_range("min_length", "n", n, lo=0)
  length = _length_fn(unit)
  return doc_filter(lambda d: None if length(d) >= n else "too_short")


@op
def max_length(n: int, unit: str = "chars"):
  """Drops documents longer than n characters (or words)."""
  check_range("max_length", "n", n, lo=1)
  length = _length_fn(unit)
  return doc_filter(lambda d: None if length(d) <= n else "too_long")
