"""Any folder of UTF-8 text files as a tfds data set: `data.name = "text_files/<folder>"`.

The folder is `<data dir>/<folder>/`; every regular file in it (sorted, recursive, hidden files
skipped) is one document, or several when `data.text.delimiter` splits it (read in 8 MB pieces,
so a file may be larger than memory). A document's stable key is (file index << 32) | its index
in the file. Splits are train, validation and test: `train_fraction` of the corpus is the training
side, the last `validation_fraction` of that side is validation (the split for every choice), the
rest of the corpus is test (the reported split); validation_fraction 0 leaves train and test.
- `split_by="characters"`: the corpus (documents joined in order) is cut by characters; for tiny
  Shakespeare at 0.9 that is nanoGPT's cut, so its validation text is our test split.
- `split_by="documents"`: documents ordered by a seeded hash of their key and cut in that order
  (a function of the kept keys, so Beam splits alike).
Invalid UTF-8 (`bad_utf8`): "error" names the file, document and byte; "replace" puts U+FFFD in
and counts it; "skip" drops the document and counts it. `clean` (aigc_jax/data/clean.py) streams
every document through the cleaning ops and de-duplication before the split; its report, with
every rule's drops, is written to `clean_report.json` in the prepared data set's folder.
With `data.beam_options` set, all of it (reading, cleaning, de-duplication, the split) runs as
one Apache Beam pipeline, keeping exactly the documents the local path keeps.
"""

import dataclasses
import json
import os
import re
from typing import Iterator

import tensorflow_datasets as tfds

from aigc_jax.data import clean
from aigc_jax.data.builders import FolderConfig, folder_config
from aigc_jax.errors import ConfigError

SPLITS = ("characters", "documents")
REPORT = "clean_report.json"
BAD_UTF8 = ("error", "replace", "skip")
READ_BYTES = 8 << 20
_UNDECODABLE = re.compile("[\udc80-\udcff]+")  # what surrogateescape makes of invalid bytes


@dataclasses.dataclass
class TextOptions:
  """`config.data.text`: how a folder of text becomes splits."""
  split_by: str = "characters"  # characters | documents
  train_fraction: float = 0.9  # the training side; the rest is the test split
  validation_fraction: float = 0.05  # the end of the training side held out for choices
  delimiter: str = ""  # splits a file into documents; "": one document a file
  bad_utf8: str = "error"  # error | replace | skip
  seed: int = 0
  # Build-time document cleaning, "op|op(args)" (aigc_jax/data/clean.py); a report of each run
  # is written into the prepared data set's folder.
  clean: str = ""


SECTION = ("text", TextOptions)  # the config.data key this builder reads its options from


def split_names(opts: TextOptions) -> tuple[str, ...]:
  return ("train", "validation", "test") if opts.validation_fraction else ("train", "test")


def split_fractions(opts: TextOptions) -> tuple[float, ...]:
  """Shares of the corpus before the test split: (train, validation), or (train,)."""
  if not opts.validation_fraction:
    return (opts.train_fraction,)
  val = opts.train_fraction * opts.validation_fraction
  return (opts.train_fraction - val, val)


def make_config(folder: str, data_config) -> FolderConfig:
  """The builder config for `folder`; non-default options get their own prepared copy."""
  if not folder:
    raise ConfigError("text_files needs a folder: data.name='text_files/<folder under data dir>'.")
  opts = TextOptions(**dict(data_config.text))
  if opts.split_by not in SPLITS:
    raise ConfigError(f"data.text.split_by={opts.split_by!r}; valid: {', '.join(SPLITS)}.")
  if not (0 < opts.train_fraction < 1 and 0 <= opts.validation_fraction < 1):
    raise ConfigError(f"data.text.train_fraction={opts.train_fraction} must be in (0, 1) and "
                      f"validation_fraction={opts.validation_fraction} in [0, 1).")
  if opts.bad_utf8 not in BAD_UTF8:
    raise ConfigError(f"data.text.bad_utf8={opts.bad_utf8!r}; valid: {', '.join(BAD_UTF8)}.")
  if not 0.0 < opts.train_fraction < 1.0:
    raise ConfigError(f"data.text.train_fraction must be in (0, 1), got {opts.train_fraction}.")
  clean.parse(opts.clean)  # unknown cleaning ops fail here, before any file is read
  return folder_config(folder, opts, f"Text files of {folder}/ split by {opts.split_by}.")


def text_file_paths(folder: str) -> list[str]:
  """Every non-hidden file under `folder`, recursively, in sorted order: the documents' order."""
  out = []
  for root, dirs, names in os.walk(folder):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    out.extend(os.path.join(root, n) for n in sorted(names) if not n.startswith("."))
  return out


def check_raw(raw_dir: str, config: FolderConfig) -> None:
  folder = os.path.join(raw_dir, config.folder)
  if not os.path.isdir(folder):
    raise ConfigError(f"Text folder {folder} does not exist: text_files/{config.folder} reads "
                      f"<data dir>/{config.folder}/ (data dir: --config.data.data_dir or "
                      "$AIGC_JAX_DATA).")
  if not any(os.path.getsize(f) for f in text_file_paths(folder)):
    raise ConfigError(f"Text folder {folder} has no non-empty files; put UTF-8 text files in it.")


def _utf8_cut(b: bytes) -> int:
  """Length of `b` without a multi-byte character cut off at its end."""
  for back in range(1, min(4, len(b)) + 1):
    c = b[-back]
    if c < 0x80:
      return len(b)
    if c >= 0xC0:
      need = 2 if c < 0xE0 else 3 if c < 0xF0 else 4
      return len(b) if need <= back else len(b) - back
  return len(b)


def _pieces(path: str, delimiter: str) -> Iterator[tuple[str, int]]:
  """(piece, byte offset in the file) per delimited piece, invalid bytes as lone surrogates."""
  with open(path, "rb") as f:
    if not delimiter:
      yield f.read().decode("utf-8", "surrogateescape"), 0
      return
    pending, carry, start = b"", "", 0
    while True:
      chunk = f.read(READ_BYTES)
      data = pending + chunk
      cut = _utf8_cut(data) if chunk else len(data)
      data, pending = data[:cut], data[cut:]
      text = carry + data.decode("utf-8", "surrogateescape")
      parts = text.split(delimiter)
      carry = parts.pop() if chunk else ""
      for part in parts:
        yield part, start
        start += len((part + delimiter).encode("utf-8", "surrogateescape"))
      if not chunk:
        return


def iter_file(path: str, file_index: int, opts: TextOptions, stats: dict):
  """The file's documents as (key, text); invalid UTF-8 handled as `opts.bad_utf8` says and
  counted in `stats`."""
  part = 0
  for text, offset in _pieces(path, opts.delimiter):
    if not text:
      continue
    key = (file_index << 32) | part
    part += 1
    if not text.isascii():
      bad = _UNDECODABLE.search(text)
      if bad:
        if opts.bad_utf8 == "error":
          at = offset + len(text[:bad.start()].encode("utf-8", "surrogateescape"))
          raw = bad.group().encode("utf-8", "surrogateescape")[:8]
          raise ConfigError(f"{path} is not valid UTF-8 (byte {at}: {raw!r}). Fix the file, or "
                            "set data.text.bad_utf8='replace' (U+FFFD, counted) or 'skip' (drop "
                            "the document, counted).")
        if opts.bad_utf8 == "skip":
          stats["invalid_utf8_documents_skipped"] = stats.get(
              "invalid_utf8_documents_skipped", 0) + 1
          continue
        stats["invalid_utf8_replaced"] = stats.get("invalid_utf8_replaced", 0) + sum(
            len(m) for m in _UNDECODABLE.findall(text))
        text = _UNDECODABLE.sub(lambda m: "\ufffd" * len(m.group()), text)
    yield key, text


def iter_documents(files: list[str], opts: TextOptions, stats: dict):
  for i, path in enumerate(files):
    yield from iter_file(path, i, opts, stats)


def read_documents(folder: str, opts: TextOptions) -> tuple[list[str], int]:
  """(documents, number of invalid UTF-8 sequences replaced), all in memory (small corpora)."""
  stats = {}
  docs = [t for _, t in iter_documents(text_file_paths(folder), opts, stats)]
  return docs, stats.get("invalid_utf8_replaced", 0)


def beam_read(item, opts: TextOptions):
  """Beam worker: (file index, path) -> its (key, text) documents, then its read counts.
  Module-level so Beam pickles it by reference."""
  import apache_beam as beam  # pylint: disable=import-outside-toplevel
  stats = {}
  yield from iter_file(item[1], item[0], opts, stats)
  yield beam.pvalue.TaggedOutput("stats", stats)


def check_beam(opts: TextOptions) -> None:
  """A character cut needs the whole corpus as one string; Beam splits by documents."""
  if opts.split_by != "documents":
    raise ConfigError("Preparing text_files with Beam needs data.text.split_by='documents'; "
                      "a character cut joins the whole corpus on one machine: prepare it without "
                      "data.beam_options.")


class Builder(tfds.core.GeneratorBasedBuilder):
  """A folder of text files; configs are made per folder by `make_config`."""

  name = "text_files"
  VERSION = tfds.core.Version("1.2.0")
  RELEASE_NOTES = {"1.2.0": "Splits train / validation / test: the end of the training side is "
                            "validation; what was 'validation' is now 'test'. Near-duplicate "
                            "removal keeps a document unless a kept one is its verified near "
                            "copy (no removal through chains).",
                   "1.1.0": "Documents split by a seeded hash of their stable key; streamed "
                            "cleaning with verified near-duplicate removal."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = "Set $AIGC_JAX_DATA to a folder holding <folder>/*.txt."

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__,
        features=tfds.features.FeaturesDict({"text": tfds.features.Text()}))

  def _download_and_prepare(self, dl_manager, download_config):
    # tfds hands the Beam runner only to its split writer; remember whether one was asked for.
    self._use_beam = bool(download_config.beam_runner or download_config.beam_options)
    return super()._download_and_prepare(dl_manager, download_config)

  def _split_generators(self, dl_manager):
    opts = self.builder_config.options
    name = f"text_files/{self.builder_config.folder}"
    folder = os.path.join(str(dl_manager.manual_dir), self.builder_config.folder)
    files = text_file_paths(folder)
    if getattr(self, "_use_beam", False):
      check_beam(opts)
      corpus = clean.BeamCorpus(
          [(i, f) for i, f in enumerate(files) if os.path.getsize(f)],
          BeamReader(opts), opts.clean, opts.seed, split_fractions(opts),
          os.path.join(self.data_dir, REPORT), {"folder": folder})
      return {name: corpus.split(i) for i, name in enumerate(split_names(opts))}
    stats = {}
    result = clean.clean_stream(iter_documents(files, opts, stats), opts.clean, progress=name)
    report = dict(result.report, folder=folder, **stats)
    if stats:
      print(f"{name}: invalid UTF-8: {stats}", flush=True)
    if opts.clean:
      with open(os.path.join(self.data_dir, REPORT), "w") as f:
        json.dump(report, f, indent=1)
      print(f"{name}: {clean.describe(report)}", flush=True)
    if not len(result):
      result.close()
      raise ConfigError(f"Cleaning {opts.clean!r} removed every document of {folder}; "
                        "relax data.text.clean.")
    if opts.split_by == "characters":
      corpus = "".join(t for _, t in result)
      result.close()
      test = int(len(corpus) * opts.train_fraction)  # nanoGPT's cut, exactly
      cuts = [0, test - int(test * opts.validation_fraction), test, len(corpus)]
      if not opts.validation_fraction:
        del cuts[1]
      return {name: self._generate_examples([(0, corpus[a:b])])
              for name, a, b in zip(split_names(opts), cuts, cuts[1:])}
    keys = result.keys[result.alive]
    which = clean.split_index(keys, opts.seed,
                              clean.split_cuts(keys, opts.seed, split_fractions(opts)))
    return {name: self._generate_examples(result, which, i)
            for i, name in enumerate(split_names(opts))}

  def _generate_examples(self, docs, which=None, index=0):
    """(key, text) in key order; with `which`, only those whose entry equals `index`."""
    for i, (key, text) in enumerate(docs):
      if which is None or which[i] == index:
        yield key, {"text": text}


class BeamReader:
  """Picklable (file index, path) -> documents for Beam workers."""

  def __init__(self, opts: TextOptions):
    self.opts = opts

  def __call__(self, item):
    return beam_read(item, self.opts)
