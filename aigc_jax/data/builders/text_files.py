"""Any folder of UTF-8 text files as a tfds data set: `data.name = "text_files/<folder>"`.

The folder is `<data dir>/<folder>/`; every regular file in it (sorted, recursive, hidden files
skipped) is one document, or several when `data.text.delimiter` splits it. Splits:
- `split_by="characters"`: the corpus (documents joined in order) is cut at `train_fraction` of
  its characters, as nanoGPT does for tiny Shakespeare; each split is one document.
- `split_by="documents"`: a seeded shuffle of the documents, the first `train_fraction` train.
With `data.beam_options` set, the same builder is prepared by Apache Beam (one document per file,
read and cleaned by the workers, identical records), for corpora too big for one machine.
Invalid UTF-8 is an error naming the file (`bad_utf8="error"`) or replaced with U+FFFD and
counted (`"replace"`). `clean` (aigc_jax/data/clean.py) runs over all documents before the split;
its report is written to `clean_report.json` in the prepared data set's folder.
"""

import dataclasses
import json
import os

import numpy as np
import tensorflow_datasets as tfds

from aigc_jax.data import clean
from aigc_jax.data.builders import FolderConfig, folder_config
from aigc_jax.errors import ConfigError

SPLITS = ("characters", "documents")
REPORT = "clean_report.json"
BAD_UTF8 = ("error", "replace")


@dataclasses.dataclass
class TextOptions:
  split_by: str = "characters"
  train_fraction: float = 0.9
  delimiter: str = ""
  bad_utf8: str = "error"
  seed: int = 0
  clean: str = ""


def make_config(folder: str, data_config) -> FolderConfig:
  """The builder config for `folder`; non-default options get their own prepared copy."""
  if not folder:
    raise ConfigError("text_files needs a folder: data.name='text_files/<folder under data dir>'.")
  opts = TextOptions(**dict(data_config.text))
  if opts.split_by not in SPLITS:
    raise ConfigError(f"data.text.split_by={opts.split_by!r}; valid: {', '.join(SPLITS)}.")
  if opts.bad_utf8 not in BAD_UTF8:
    raise ConfigError(f"data.text.bad_utf8={opts.bad_utf8!r}; valid: {', '.join(BAD_UTF8)}.")
  if not 0.0 < opts.train_fraction < 1.0:
    raise ConfigError(f"data.text.train_fraction must be in (0, 1), got {opts.train_fraction}.")
  clean.parse(opts.clean)  # unknown cleaning ops fail here, before any file is read
  return folder_config(folder, opts, f"Text files of {folder}/ split by {opts.split_by}.")


def _files(folder: str) -> list[str]:
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
  if not any(os.path.getsize(f) for f in _files(folder)):
    raise ConfigError(f"Text folder {folder} has no non-empty files; put UTF-8 text files in it.")


def read_file(path: str, opts: TextOptions) -> tuple[list[str], int]:
  """One file's documents and its count of replaced invalid UTF-8 sequences."""
  with open(path, "rb") as f:
    raw = f.read()
  replaced = 0
  try:
    text = raw.decode("utf-8")
  except UnicodeDecodeError as e:
    if opts.bad_utf8 == "error":
      raise ConfigError(f"{path} is not valid UTF-8 (byte {e.start}: {raw[e.start:e.end]!r}). "
                        "Fix the file, or set data.text.bad_utf8='replace' to replace and "
                        "count such bytes.") from None
    text = raw.decode("utf-8", errors="replace")
    replaced = text.count("\ufffd") - raw.decode("utf-8", "ignore").count("\ufffd")
  parts = text.split(opts.delimiter) if opts.delimiter else [text]
  return [p for p in parts if p], replaced


def read_documents(folder: str, opts: TextOptions) -> tuple[list[str], int]:
  """(documents, number of invalid UTF-8 sequences replaced)."""
  docs, replaced = [], 0
  for path in _files(folder):
    d, r = read_file(path, opts)
    docs.extend(d)
    replaced += r
  return docs, replaced


def split_documents(n: int, opts: TextOptions) -> tuple[np.ndarray, np.ndarray]:
  """Indices of the train and validation documents: a seeded shuffle cut at train_fraction."""
  order = np.random.default_rng(opts.seed).permutation(n)
  cut = min(max(int(n * opts.train_fraction), 1), n - 1)
  return order[:cut], order[cut:]


def beam_example(item, opts: TextOptions):
  """Beam worker: (key, path) -> (key, example), the file read and cleaned where it runs.
  Module-level so Beam pickles it by reference."""
  key, path = item
  (doc,), _ = read_file(path, opts)
  if opts.clean:
    (doc,), _ = clean.run([doc], opts.clean)
  return key, {"text": doc}


def check_beam(opts: TextOptions) -> None:
  """Under Beam each file is one document, read, cleaned and written by a worker; global steps
  (de-duplication, filters, a character cut) need the whole corpus on one machine."""
  if opts.split_by != "documents" or opts.delimiter:
    raise ConfigError("Preparing text_files with Beam needs data.text.split_by='documents' and "
                      "no delimiter (one document per file); prepare it without "
                      "data.beam_options otherwise.")
  global_ops = [s.text for s in clean.parse(opts.clean) if not s.per_document]
  if global_ops:
    raise ConfigError(f"Cleaning ops {global_ops} compare or drop documents and run on one "
                      "machine only; prepare without data.beam_options, or clean the files first.")


class Builder(tfds.core.GeneratorBasedBuilder):
  """A folder of text files; configs are made per folder by `make_config`."""

  name = "text_files"
  VERSION = tfds.core.Version("1.0.0")
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
    folder = os.path.join(str(dl_manager.manual_dir), self.builder_config.folder)
    if getattr(self, "_use_beam", False):
      check_beam(opts)
      files = [f for f in _files(folder) if os.path.getsize(f)]
      if len(files) < 2:
        raise ConfigError(f"{folder} has {len(files)} non-empty file(s); split_by='documents' "
                          "needs two or more.")
      train, validation = ([files[i] for i in idx] for idx in split_documents(len(files), opts))
      return {"train": self._beam_examples(train), "validation": self._beam_examples(validation)}
    docs, replaced = read_documents(folder, opts)
    if replaced:
      print(f"text_files/{self.builder_config.folder}: replaced {replaced} invalid UTF-8 "
            "sequences with U+FFFD", flush=True)
    if opts.clean:
      docs, report = clean.run(docs, opts.clean)
      report.update(folder=folder, invalid_utf8_replaced=replaced)
      with open(os.path.join(self.data_dir, REPORT), "w") as f:
        json.dump(report, f, indent=1)
      print(f"text_files/{self.builder_config.folder}: {clean.describe(report)}", flush=True)
      if not docs:
        raise ConfigError(f"Cleaning {opts.clean!r} removed every document of {folder}; "
                          "relax data.text.clean.")
    if opts.split_by == "characters":
      corpus = "".join(docs)
      cut = int(len(corpus) * opts.train_fraction)
      train, validation = [corpus[:cut]], [corpus[cut:]]
    else:
      if len(docs) < 2:
        raise ConfigError(f"{folder} has {len(docs)} document(s); split_by='documents' needs "
                          "two or more (or use split_by='characters').")
      train, validation = ([docs[i] for i in idx] for idx in split_documents(len(docs), opts))
    return {"train": self._generate_examples(train),
            "validation": self._generate_examples(validation)}

  def _generate_examples(self, docs):
    return ((i, {"text": d}) for i, d in enumerate(docs))

  def _beam_examples(self, files):
    """The same keys and examples as the local path, produced by Beam workers."""
    beam = tfds.core.lazy_imports.apache_beam  # imported only on this path
    return (beam.Create(list(enumerate(files)))
            | beam.Map(beam_example, opts=self.builder_config.options))
