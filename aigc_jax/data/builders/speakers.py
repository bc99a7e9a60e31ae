"""Who speaks? A labelled text data set made from a play script: `data.name = "speakers/<folder>"`.

The folder (e.g. tinyshakespeare/) holds text laid out as speeches: a line `NAME:` then the
speech's lines, speeches separated by a blank line. The `num_speakers` speakers with the most
speeches are the classes (ordered by count, names in the label feature); each example is one line
of a speech (`unit="line"`) or a whole speech (`"speech"`), without the speaker's name. The split
is by speech, stratified by speaker: `test_fraction` of each speaker's speeches (a seeded draw)
are test, so no speech has lines on both sides. Options come from `data.speakers`.
"""

import collections
import dataclasses
import os
import re

import numpy as np
import tensorflow_datasets as tfds

from aigc_jax.data.builders import FolderConfig, folder_config, text_files
from aigc_jax.errors import ConfigError

UNITS = ("line", "speech")
_HEADER = re.compile(r"^([A-Za-z][A-Za-z .,'&-]*):$")


@dataclasses.dataclass
class SpeakerOptions:
  """`config.data.speakers`: lines of a play labelled with their speaker."""
  num_speakers: int = 10
  unit: str = "line"
  test_fraction: float = 0.2
  seed: int = 0


SECTION = ("speakers", SpeakerOptions)  # the config.data key this builder reads its options from


def make_config(folder: str, data_config) -> FolderConfig:
  if not folder:
    raise ConfigError("speakers needs a folder: data.name='speakers/<folder under data dir>'.")
  opts = SpeakerOptions(**dict(data_config.speakers))
  if opts.unit not in UNITS:
    raise ConfigError(f"data.speakers.unit={opts.unit!r}; valid: {', '.join(UNITS)}.")
  if opts.num_speakers < 2:
    raise ConfigError(f"data.speakers.num_speakers={opts.num_speakers}; a classifier needs >= 2.")
  if not 0.0 < opts.test_fraction < 1.0:
    raise ConfigError(f"data.speakers.test_fraction must be in (0, 1), got {opts.test_fraction}.")
  return folder_config(folder, opts, f"Speaker classification on {folder}/.")


check_raw = text_files.check_raw


def speeches(text: str) -> list[tuple[str, list[str]]]:
  """(speaker, non-empty lines) of every speech; blocks without a `NAME:` line or without lines
  (stage directions, entrances) are skipped."""
  out = []
  for block in re.split(r"\n\s*\n", text):
    lines = block.strip("\n").split("\n")
    m = _HEADER.match(lines[0].strip())
    body = [line.strip() for line in lines[1:] if line.strip()]
    if m and body:
      out.append((m.group(1), body))
  return out


def select(all_speeches, opts: SpeakerOptions):
  """(class names, train speeches, test speeches), each speech as (label, lines)."""
  counts = collections.Counter(name for name, _ in all_speeches)
  if len(counts) < opts.num_speakers:
    raise ConfigError(f"The text has {len(counts)} speakers with a speech, fewer than "
                      f"data.speakers.num_speakers={opts.num_speakers}; lower it.")
  # Most speeches first; ties by name so the classes do not depend on file order.
  names = [n for n, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
  names = names[:opts.num_speakers]
  rng = np.random.default_rng(opts.seed)
  train, test = [], []
  for label, name in enumerate(names):
    mine = [lines for n, lines in all_speeches if n == name]
    order = rng.permutation(len(mine))
    cut = max(1, int(round(len(mine) * opts.test_fraction)))
    if cut >= len(mine):
      raise ConfigError(f"Speaker {name} has {len(mine)} speech(es); too few to put "
                        f"{opts.test_fraction:.0%} on the test side. Lower num_speakers.")
    test += [(label, mine[i]) for i in sorted(order[:cut])]
    train += [(label, mine[i]) for i in sorted(order[cut:])]
  return names, train, test


class Builder(tfds.core.GeneratorBasedBuilder):
  """Lines or speeches labelled with their speaker; configs are made per folder."""

  name = "speakers"
  VERSION = tfds.core.Version("1.0.0")
  MANUAL_DOWNLOAD_INSTRUCTIONS = "Set $AIGC_JAX_DATA to a folder holding <folder>/*.txt."

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__,
        features=tfds.features.FeaturesDict({
            "text": tfds.features.Text(),
            # The names are only known from the text: set when preparing, stored with the data.
            "label": tfds.features.ClassLabel(),
            "speech": np.int32,  # index of the speech within its split
        }),
        supervised_keys=("text", "label"))

  def _split_generators(self, dl_manager):
    folder = os.path.join(str(dl_manager.manual_dir), self.builder_config.folder)
    docs, _ = text_files.read_documents(folder, text_files.TextOptions())
    names, train, test = select([s for d in docs for s in speeches(d)],
                                self.builder_config.options)
    self.info.features["label"].names = names
    return {"train": self._generate_examples(train), "test": self._generate_examples(test)}

  def _generate_examples(self, speeches_):
    unit = self.builder_config.options.unit
    key = 0
    for s, (label, lines) in enumerate(speeches_):
      for text in (lines if unit == "line" else ["\n".join(lines)]):
        yield key, {"text": text, "label": label, "speech": s}
        key += 1
