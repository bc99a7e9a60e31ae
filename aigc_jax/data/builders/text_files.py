"""Any folder of UTF-8 text files as a tfds data set: `data.name = "text_files/<folder>"`.

The folder is `<data dir>/<folder>/`; every regular file in it (sorted, recursive, hidden files
skipped) is one document, or several when `data.text.delimiter` splits it. Splits:
- `split_by="characters"`: the corpus (documents joined in order) is cut at `train_fraction` of
  its characters, as nanoGPT does for tiny Shakespeare; each split is one document.
- `split_by="documents"`: a seeded shuffle of the documents, the first `train_fraction` train.
Invalid UTF-8 is an error naming the file (`bad_utf8="error"`) or replaced with U+FFFD and
counted (`"replace"`). `clean` (aigc_jax/data/clean.py) runs over all documents before the split;
its report is written to `clean_report.json` in the prepared data set's folder.
"""

import dataclasses
import hashlib
import json
import os

import numpy as np
import tensorflow_datasets as tfds

from aigc_jax.data import clean
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


class TextFilesConfig(tfds.core.BuilderConfig):

  def __init__(self, *, folder: str, options: TextOptions, **kwargs):
    super().__init__(**kwargs)
    self.folder = folder
    self.options = options


def make_config(folder: str, data_config) -> TextFilesConfig:
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
  name = folder
  if opts != TextOptions():
    digest = hashlib.sha1(json.dumps(dataclasses.asdict(opts), sort_keys=True).encode())
    name = f"{folder}-{digest.hexdigest()[:8]}"
  return TextFilesConfig(name=name, folder=folder, options=opts,
                         description=f"Text files of {folder}/ split by {opts.split_by}.")


def _files(folder: str) -> list[str]:
  out = []
  for root, dirs, names in os.walk(folder):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    out.extend(os.path.join(root, n) for n in sorted(names) if not n.startswith("."))
  return out


def check_raw(raw_dir: str, config: TextFilesConfig) -> None:
  folder = os.path.join(raw_dir, config.folder)
  if not os.path.isdir(folder):
    raise ConfigError(f"Text folder {folder} does not exist: text_files/{config.folder} reads "
                      f"<data dir>/{config.folder}/ (data dir: --config.data.data_dir or "
                      "$AIGC_JAX_DATA).")
  if not any(os.path.getsize(f) for f in _files(folder)):
    raise ConfigError(f"Text folder {folder} has no non-empty files; put UTF-8 text files in it.")


def read_documents(folder: str, opts: TextOptions) -> tuple[list[str], int]:
  """(documents, number of invalid UTF-8 sequences replaced)."""
  docs, replaced = [], 0
  for path in _files(folder):
    with open(path, "rb") as f:
      raw = f.read()
    try:
      text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
      if opts.bad_utf8 == "error":
        raise ConfigError(f"{path} is not valid UTF-8 (byte {e.start}: {raw[e.start:e.end]!r}). "
                          "Fix the file, or set data.text.bad_utf8='replace' to replace and "
                          "count such bytes.") from None
      text = raw.decode("utf-8", errors="replace")
      replaced += text.count("\ufffd") - raw.decode("utf-8", "ignore").count("\ufffd")
    parts = text.split(opts.delimiter) if opts.delimiter else [text]
    docs.extend(p for p in parts if p)
  return docs, replaced


class Builder(tfds.core.GeneratorBasedBuilder):
  """A folder of text files; configs are made per folder by `make_config`."""

  name = "text_files"
  VERSION = tfds.core.Version("1.0.0")
  MANUAL_DOWNLOAD_INSTRUCTIONS = "Set $AIGC_JAX_DATA to a folder holding <folder>/*.txt."

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__,
        features=tfds.features.FeaturesDict({"text": tfds.features.Text()}))

  def _split_generators(self, dl_manager):
    opts = self.builder_config.options
    folder = os.path.join(str(dl_manager.manual_dir), self.builder_config.folder)
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
      order = np.random.default_rng(opts.seed).permutation(len(docs))
      cut = min(max(int(len(docs) * opts.train_fraction), 1), len(docs) - 1)
      train = [docs[i] for i in order[:cut]]
      validation = [docs[i] for i in order[cut:]]
    return {"train": self._generate_examples(train),
            "validation": self._generate_examples(validation)}

  def _generate_examples(self, docs):
    for i, d in enumerate(docs):
      yield i, {"text": d}
