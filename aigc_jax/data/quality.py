"""Quality filters (Gopher, C4, FineWeb heuristics) and PII scrubbing, as doc ops in docops.OPS.

The four quality ops wrap datatrove's reference implementations, so that their thresholds mean
exactly what the published recipes mean, and keep datatrove's keyword names and defaults. They
import datatrove (and need spacy for its English word tokenizer, a blank pipeline that works
offline) only when a factory is called: install them with pip install -e '.[clean]'.

Besides docops' 'map' and 'filter' kinds, this module adds a third:

  kind 'map_filter': fn(text) -> (new_text, reason). reason None keeps the document as new_text;
  a reason string drops it (new_text is then the input, unchanged).

c4_quality is of that kind, because C4's line rules (no terminal punctuation, too few words, a
word over max_word_length, "javascript", cookie/terms-of-use lines, citation marks) rewrite the
document while its page rules (too few sentences, "lorem ipsum", a curly bracket) drop it. Note
that the rewrite strips every line and joins the kept ones with one newline (blank lines count as
too short), or with spaces when split_paragraph=False.

Thresholds are checked when the factory is called. Where datatrove treats 0 as "rule off" for a
maximum (max_doc_words=0 would otherwise read as "drop everything"), pass None instead; 0 is
refused. The C4 integer limits keep datatrove's -1 for "off".
"""

import importlib.util
import ipaddress
import re
from typing import Callable, Optional

from aigc_jax.data.docops import DocOp, check_range, doc_filter, mapper, op
from aigc_jax.errors import ConfigError


def map_filter(fn: Callable[[str], tuple[str, Optional[str]]]) -> DocOp:
  return DocOp("map_filter", fn)


def _check_bool(op_name: str, arg: str, value):
  if not isinstance(value, bool):
    raise ConfigError(f"{op_name}: {arg}={value!r} must be True or False.")


def _check(op_name: str, arg: str, value, lo=None, hi=None, lo_open=False, off=()):
  """check_range, except that the values in `off` (datatrove's "rule disabled") also pass."""
  if any(value is o or (o is not None and value == o and not isinstance(value, bool)) for o in off):
    return
  extra = f", or {off[0]!r} to disable the rule" if off else ""
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    # check_range would compare first and raise TypeError for a string
    raise ConfigError(f"{op_name}: {arg}={value!r} must be a number{extra}.")
  try:
    check_range(op_name, arg, value, lo, hi, lo_open=lo_open)
  except ConfigError as e:
    if not off:
      raise
    raise ConfigError(f"{str(e).rstrip('.')}{extra}.") from None


def _check_order(op_name: str, lo_arg: str, lo, hi_arg: str, hi):
  if lo is not None and hi is not None and lo > hi:
    raise ConfigError(f"{op_name}: {lo_arg}={lo!r} is above {hi_arg}={hi!r}.")


def _datatrove(op_name: str):
  """(Document, datatrove.pipeline.filters), or ConfigError saying what to install."""
  try:
    # datatrove imports without spacy and would only fail at the first document
    if importlib.util.find_spec("spacy") is None:
      raise ImportError("spacy")
    from datatrove.data import Document
    from datatrove.pipeline import filters
  except ImportError:
    raise ConfigError(f"{op_name} needs datatrove: pip install -e '.[clean]' "
                      "(datatrove, spacy, regex)") from None
  return Document, filters


def _quiet(flt):
  # datatrove counts every line a filter sees for its own run reports, which nothing reads here
  flt.stat_update = lambda *labels, **kw: None
  return flt


def _drop_reason(result, op_name: str) -> Optional[str]:
  """datatrove's True / False / (False, reason) -> None to keep, else a reason."""
  keep, reason = result if isinstance(result, tuple) else (result, None)
  return None if keep else (reason or op_name)


def _wrap_filter(op_name: str, Document, flt) -> DocOp:
  return doc_filter(lambda d: _drop_reason(flt.filter(Document(text=d, id="")), op_name))


@op
def gopher_quality(*, min_doc_words=50, max_doc_words=100000, min_avg_word_length=3,
                   max_avg_word_length=10, max_symbol_word_ratio=0.1, max_bullet_lines_ratio=0.9,
                   max_ellipsis_lines_ratio=0.3, max_non_alpha_words_ratio=0.8, min_stop_words=2):
  """Gopher (Rae et al. 2021, table A1) document heuristics. Words are spacy English tokens.

  Drop reasons: gopher_short_doc, gopher_long_doc (word count out of range, symbols not counted),
  gopher_below_avg_threshold, gopher_above_avg_threshold (mean word length),
  gopher_too_many_hashes, gopher_too_many_ellipsis ('#' or '...' per word),
  gopher_too_many_bullets (lines starting with '-' or '•'), gopher_too_many_end_ellipsis (lines
  ending with '...'), gopher_below_alpha_threshold (despite datatrove's name,
  max_non_alpha_words_ratio is the minimum fraction of words with a letter),
  gopher_enough_stop_words (fewer than min_stop_words distinct of: the be to of and that have
  with).
  """
  name = "gopher_quality"
  # min_doc_words >= 1 guarantees a word and a line, which datatrove divides by
  _check(name, "min_doc_words", min_doc_words, lo=1)
  _check(name, "max_doc_words", max_doc_words, lo=0, lo_open=True, off=(None,))
  _check_order(name, "min_doc_words", min_doc_words, "max_doc_words", max_doc_words)
  _check(name, "min_avg_word_length", min_avg_word_length, lo=0, off=(None,))
  _check(name, "max_avg_word_length", max_avg_word_length, lo=0, lo_open=True, off=(None,))
  _check_order(name, "min_avg_word_length", min_avg_word_length, "max_avg_word_length",
               max_avg_word_length)
  _check(name, "max_symbol_word_ratio", max_symbol_word_ratio, lo=0, lo_open=True, off=(None,))
  for arg, v in (("max_bullet_lines_ratio", max_bullet_lines_ratio),
                 ("max_ellipsis_lines_ratio", max_ellipsis_lines_ratio)):
    _check(name, arg, v, lo=0, hi=1, lo_open=True, off=(None,))
  _check(name, "max_non_alpha_words_ratio", max_non_alpha_words_ratio, lo=0, hi=1, off=(None,))
  _check(name, "min_stop_words", min_stop_words, lo=0, off=(None,))
  Document, filters = _datatrove(name)
  return _wrap_filter(name, Document, _quiet(filters.GopherQualityFilter(
      min_doc_words=min_doc_words, max_doc_words=max_doc_words,
      min_avg_word_length=min_avg_word_length, max_avg_word_length=max_avg_word_length,
      max_symbol_word_ratio=max_symbol_word_ratio, max_bullet_lines_ratio=max_bullet_lines_ratio,
      max_ellipsis_lines_ratio=max_ellipsis_lines_ratio,
      max_non_alpha_words_ratio=max_non_alpha_words_ratio, min_stop_words=min_stop_words)))


def _check_ngram_pairs(op_name: str, arg: str, pairs):
  if not isinstance(pairs, (tuple, list)) or not all(
      isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs):
    raise ConfigError(f"{op_name}: {arg}={pairs!r} must be a sequence of (n, max_fraction) pairs.")
  for i, (n, frac) in enumerate(pairs):
    if not isinstance(n, int) or isinstance(n, bool):
      raise ConfigError(f"{op_name}: {arg}[{i}] n={n!r} must be an integer.")
    _check(op_name, f"{arg}[{i}] n", n, lo=1)
    _check(op_name, f"{arg}[{i}] max_fraction", frac, lo=0, hi=1, lo_open=True)
  return tuple((n, frac) for n, frac in pairs)


@op
def gopher_repetition(*, dup_line_frac=0.3, dup_para_frac=0.3, dup_line_char_frac=0.2,
                      dup_para_char_frac=0.2, top_n_grams=((2, 0.2), (3, 0.18), (4, 0.16)),
                      dup_n_grams=((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11),
                                   (10, 0.10))):
  """Gopher repetition heuristics; character fractions are of the whole document's characters.

  Drop reasons: empty, dup_para_frac, dup_para_char_frac (paragraphs split on blank lines),
  dup_line_frac, dup_line_char_frac, top_{n}_gram (characters in the most frequent word n-gram),
  duplicated_{n}_n_grams (characters in repeated word n-grams).
  """
  name = "gopher_repetition"
  for arg, v in (("dup_line_frac", dup_line_frac), ("dup_para_frac", dup_para_frac),
                 ("dup_line_char_frac", dup_line_char_frac),
                 ("dup_para_char_frac", dup_para_char_frac)):
    _check(name, arg, v, lo=0, hi=1, lo_open=True, off=(None,))
  top_n_grams = _check_ngram_pairs(name, "top_n_grams", top_n_grams)
  dup_n_grams = _check_ngram_pairs(name, "dup_n_grams", dup_n_grams)
  Document, filters = _datatrove(name)
  return _wrap_filter(name, Document, _quiet(filters.GopherRepetitionFilter(
      dup_line_frac=dup_line_frac, dup_para_frac=dup_para_frac,
      dup_line_char_frac=dup_line_char_frac, dup_para_char_frac=dup_para_char_frac,
      top_n_grams=top_n_grams, dup_n_grams=dup_n_grams)))


@op
def c4_quality(*, split_paragraph=True, remove_citations=True, filter_no_terminal_punct=True,
               min_num_sentences=5, min_words_per_line=3, max_word_length=1000,
               filter_lorem_ipsum=True, filter_javascript=True, filter_curly_bracket=True,
               filter_policy=True):
  """C4 (Raffel et al. 2020) rules; kind 'map_filter' (see the module docstring).

  Line rules rewrite the document: lines (sentences when split_paragraph=False) are removed when
  they have a word longer than max_word_length, do not end in . ? ! " ' (or end in '...'), have
  fewer than min_words_per_line words, mention javascript, or mention cookies / terms of use /
  privacy policy (filter_policy); remove_citations deletes [1], [edit], [citation needed].
  Drop reasons: lorem_ipsum, curly_bracket, too_few_sentences (fewer than min_num_sentences
  sentences in the kept lines). -1 disables the integer limits.
  """
  name = "c4_quality"
  for arg, v in (("split_paragraph", split_paragraph), ("remove_citations", remove_citations),
                 ("filter_no_terminal_punct", filter_no_terminal_punct),
                 ("filter_lorem_ipsum", filter_lorem_ipsum),
                 ("filter_javascript", filter_javascript),
                 ("filter_curly_bracket", filter_curly_bracket), ("filter_policy", filter_policy)):
    _check_bool(name, arg, v)
  _check(name, "min_num_sentences", min_num_sentences, lo=0, off=(-1,))
  _check(name, "min_words_per_line", min_words_per_line, lo=0, off=(-1,))
  _check(name, "max_word_length", max_word_length, lo=1, off=(-1,))
  Document, filters = _datatrove(name)
  flt = _quiet(filters.C4QualityFilter(
      split_paragraph=split_paragraph, remove_citations=remove_citations,
      filter_no_terminal_punct=filter_no_terminal_punct, min_num_sentences=min_num_sentences,
      min_words_per_line=min_words_per_line, max_word_length=max_word_length,
      filter_lorem_ipsum=filter_lorem_ipsum, filter_javascript=filter_javascript,
      filter_curly_bracket=filter_curly_bracket, filter_policy=filter_policy))

  def f(text):
    doc = Document(text=text, id="")
    reason = _drop_reason(flt.filter(doc), name)
    return (text, reason) if reason else (doc.text, None)
  return map_filter(f)


@op
def fineweb_quality(*, line_punct_thr=0.12, line_punct_exclude_zero=False, short_line_thr=0.67,
                    short_line_length=30, char_duplicates_ratio=0.01, new_line_ratio=0.3):
  """FineWeb's extra heuristics (Penedo et al. 2024), over the document's non-blank lines.

  Drop reasons: empty, line_punct_ratio (fewer than line_punct_thr of lines end in terminal
  punctuation; line_punct_exclude_zero spares documents where none do), short_line_ratio (more
  than short_line_thr of lines have <= short_line_length characters), char_dup_ratio (characters
  in repeated lines over all non-newline characters), list_ratio (newlines per word).
  """
  name = "fineweb_quality"
  _check(name, "line_punct_thr", line_punct_thr, lo=0, hi=1)
  _check_bool(name, "line_punct_exclude_zero", line_punct_exclude_zero)
  _check(name, "short_line_thr", short_line_thr, lo=0, hi=1)
  _check(name, "short_line_length", short_line_length, lo=0)
  _check(name, "char_duplicates_ratio", char_duplicates_ratio, lo=0, hi=1)
  _check(name, "new_line_ratio", new_line_ratio, lo=0)
  Document, filters = _datatrove(name)
  return _wrap_filter(name, Document, _quiet(filters.FineWebQualityFilter(
      line_punct_thr=line_punct_thr, line_punct_exclude_zero=line_punct_exclude_zero,
      short_line_thr=short_line_thr, short_line_length=short_line_length,
      char_duplicates_ratio=char_duplicates_ratio, new_line_ratio=new_line_ratio)))


# PII patterns are written here rather than taken from datatrove's PIIFormatter: that one has no
# IPv6 or phone numbers, matches IPv4 inside longer dotted numbers (1.2.3.4 in 10.1.2.3.4), and
# cycles through a list of replacements with state kept across documents, so the same text could
# come out differently. Every quantifier below is bounded, or a match can only start where a run
# begins, so no document makes them slower than linear.
_EMAIL = re.compile(
    r"(?<![\w.%+-])[\w.%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
    r"(?![\w-])")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_V4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
# not inside a longer dotted number or a word, so versions like 1.2.3.4.5 stay
_IPV4 = re.compile(rf"(?<![\w.]){_V4}(?!\w|\.\d)")
_HEX = r"[0-9A-Fa-f]{1,4}"
# candidates only; ipaddress decides, so times (12:30:45) and MAC addresses are left alone
_IPV6 = re.compile(rf"(?<![\w:.])(?:{_HEX})?(?::(?:{_HEX})?){{2,7}}(?:(?<=:){_V4})?(?![\w:]|\.\d)")
# +CC then 6-14 digits with single separators; '+2021-03-04' has too few digits to count
_PHONE_INTL = r"(?<![\w+])\+[1-9]\d{0,2}(?:[ .-]?\(0?\d{1,4}\))?(?:[ .-]?\d){6,14}(?!\d)"
# North American forms: (415) 555-2671, 415-555-2671, 415.555.2671, 1-800-555-0199; the same
# separator throughout, so dates (2021-03-04) and decimals never fit
_PHONE_NA = (r"(?<![\w.+-])(?:1[-. ]?)?(?:\(\d{3}\)[ -]?\d{3}[-. ]|\d{3}(?P<s>[-. ])\d{3}(?P=s))"
             r"\d{4}(?!\w|[-.]\d)")
_PHONE = re.compile(f"{_PHONE_INTL}|{_PHONE_NA}")


def _sub_valid(pattern: re.Pattern, valid: Callable[[str], bool], placeholder: str):
  return lambda d: pattern.sub(lambda m: placeholder if valid(m.group()) else m.group(), d)


def _is_ipv4(s: str, public_only: bool) -> bool:
  return not public_only or ipaddress.IPv4Address(s).is_global


def _is_ipv6(s: str, public_only: bool) -> bool:
  try:
    addr = ipaddress.IPv6Address(s)
  except ValueError:
    return False
  # '::1', 'fe80::1' or Python slices like x[1::2] name no host; want three groups of digits
  groups = sum(1 for g in re.split(r"[:.]", s) if g)
  return groups >= 3 and (not public_only or addr.is_global)


@op
def pii(email: str = "<EMAIL>", ip: str = "<IP>", phone: str = "<PHONE>",
        public_ips_only: bool = False):
  """Replaces e-mail addresses, IPv4/IPv6 addresses and phone numbers by fixed placeholders.

  A placeholder "" leaves that kind alone. public_ips_only keeps private, loopback and reserved
  addresses (192.168.0.1 in a router manual names nobody). Phone numbers: +CC international forms
  and North American ten-digit ones. Dates, years, decimals and three-part versions are left
  alone; a four-part version (1.2.3.4) cannot be told from an IPv4 address.
  """
  for arg, v in (("email", email), ("ip", ip), ("phone", phone)):
    if not isinstance(v, str):
      raise ConfigError(f"pii: {arg}={v!r} must be a string (\"\" leaves that kind alone).")
  _check_bool("pii", "public_ips_only", public_ips_only)
  steps = []  # e-mails first: a domain's digits can look like an IP (a@10.0.0.1.nip.io)
  if email:
    steps.append(("@", lambda d: _EMAIL.sub(email, d)))
  if ip:
    # IPv6 first, so that ::ffff:192.0.2.1 goes whole rather than leaving '::ffff:' behind
    steps.append((":", _sub_valid(_IPV6, lambda s: _is_ipv6(s, public_ips_only), ip)))
    steps.append((".", _sub_valid(_IPV4, lambda s: _is_ipv4(s, public_ips_only), ip)))
  if phone:
    steps.append(("", lambda d: _PHONE.sub(phone, d)))

  def f(d):
    for needle, step in steps:
      if needle in d:  # cheap skip for the common document with no '@' or ':'
        d = step(d)
    return d
  return mapper(f)
