"""Recorded speech in voice folders: `data.name = "audio_folder/<folder>"`.

`<folder>/<voice>/**.wav|flac` are the utterances; a voice is a sub-folder (speaker plus
language, e.g. `en_US_f_Allison`), its language the name's part before the first "_". A
transcript file for a voice is `<folder>/<voice>/transcripts.txt` or `<folder>/transcripts-<lang>.txt`
(lines `path/without/extension: text`; lines starting with ';' are comments; a text that is
wholly [bracketed] describes a tone and is flagged `speech=False`).

Splits are by **prompt** (the file's path inside its voice folder, e.g. `digits/7`): a seeded
hash of the prompt's name puts it in test, validation or train, the same for every voice, so no
prompt is on both sides. Features: audio (int16 samples, the sample rate in
`info.metadata["sample_rate"]`), voice, language, transcript, speech, prompt. Build
options come from `data.audio_folder`: resampling to one rate and mixing channels to mono happen
here, once; without them a file at another rate or with several channels is an error naming it.
"""

import dataclasses
import hashlib
import json
import math
import os
import re

import numpy as np
import tensorflow_datasets as tfds

from aigc_jax.data.builders import FolderConfig, folder_config
from aigc_jax.errors import ConfigError

EXTENSIONS = (".wav", ".flac")
MISSING = ("error", "skip")
REPORT = "audio_report.json"  # beside the prepared data: what the build skipped, and why
_BRACKETED = re.compile(r"^\s*\[[^\]]*\]\s*$")


@dataclasses.dataclass
class AudioFolderOptions:
  """`config.data.audio_folder`: how voice folders of recordings become a data set."""
  sample_rate: int = 0  # > 0: resample every file to this rate; 0: all files must share one
  mix_channels: bool = False  # average several channels to mono (else such a file is an error)
  test_fraction: float = 0.15  # of prompts
  validation_fraction: float = 0.1  # of prompts
  seed: int = 0  # of the prompt hash
  # A transcript line naming no file: "error", or "skip" it (listed in audio_report.json).
  missing_files: str = "error"


SECTION = ("audio_folder", AudioFolderOptions)


def make_config(folder: str, data_config) -> FolderConfig:
  if not folder:
    raise ConfigError("audio_folder needs a folder: data.name='audio_folder/<folder under data "
                      "dir>' (e.g. audio_folder/asterisk_sounds).")
  opts = AudioFolderOptions(**dict(data_config.audio_folder))
  if opts.missing_files not in MISSING:
    raise ConfigError(f"data.audio_folder.missing_files={opts.missing_files!r}; valid: "
                      f"{', '.join(MISSING)}.")
  if not (0 < opts.test_fraction and 0 <= opts.validation_fraction
          and opts.test_fraction + opts.validation_fraction < 1):
    raise ConfigError(f"data.audio_folder test_fraction={opts.test_fraction} and "
                      f"validation_fraction={opts.validation_fraction} must be >= 0 (test > 0) "
                      "and leave prompts for training (sum < 1).")
  if opts.sample_rate < 0:
    raise ConfigError(f"data.audio_folder.sample_rate={opts.sample_rate}; 0 keeps the files' rate.")
  return folder_config(folder, opts, f"Voice folders of recordings in {folder}/.")


def voices(folder: str) -> list[str]:
  return sorted(d for d in os.listdir(folder)
                if os.path.isdir(os.path.join(folder, d)) and not d.startswith("."))


def language(voice: str) -> str:
  return voice.split("_")[0]


def audio_files(voice_dir: str) -> dict[str, str]:
  """{prompt: path} of the voice's recordings, prompt = path inside the folder, no extension."""
  out = {}
  for root, dirs, names in os.walk(voice_dir):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    for n in sorted(names):
      stem, ext = os.path.splitext(n)
      if ext.lower() in EXTENSIONS and not n.startswith("."):
        out[os.path.relpath(os.path.join(root, stem), voice_dir).replace(os.sep, "/")] = \
            os.path.join(root, n)
  return out


def check_raw(raw_dir: str, config: FolderConfig) -> None:
  folder = os.path.join(raw_dir, config.folder)
  if not os.path.isdir(folder):
    raise ConfigError(f"Audio folder {folder} does not exist: audio_folder/{config.folder} reads "
                      f"<data dir>/{config.folder}/<voice>/*.wav (data dir: "
                      "--config.data.data_dir or $AIGC_JAX_DATA).")
  found = [v for v in voices(folder) if audio_files(os.path.join(folder, v))]
  if not found:
    raise ConfigError(f"Audio folder {folder} has no voice sub-folder with .wav or .flac files; "
                      "lay it out as <folder>/<voice>/<name>.wav.")


def read_transcripts(path: str) -> dict[str, str]:
  """{prompt: text} from `path/without/extension: text` lines (';' starts a comment)."""
  out = {}
  with open(path, encoding="utf-8-sig") as f:
    for n, line in enumerate(f, 1):
      line = line.strip().lstrip("\ufeff")
      if not line or line.startswith(";"):
        continue
      name, sep, text = line.partition(":")
      if not sep or not name.strip():
        raise ConfigError(f"{path}:{n}: expected 'path/without/extension: text', got {line!r}.")
      out[name.strip()] = text.strip()
  return out


def transcript_file(folder: str, voice: str) -> str | None:
  for path in (os.path.join(folder, voice, "transcripts.txt"),
               os.path.join(folder, f"transcripts-{language(voice)}.txt")):
    if os.path.exists(path):
      return path
  return None


def assign(prompt: str, opts: AudioFolderOptions) -> str:
  """The split of a prompt: a seeded hash of its name, so every voice agrees."""
  h = hashlib.sha256(f"{opts.seed}:{prompt}".encode()).digest()
  u = int.from_bytes(h[:8], "little") / 2.0**64
  if u < opts.test_fraction:
    return "test"
  if u < opts.test_fraction + opts.validation_fraction:
    return "validation"
  return "train"


def decode(path: str, opts: AudioFolderOptions) -> tuple[np.ndarray, int]:
  """(int16 mono samples, sample rate) of one file, resampled and mixed as the options say."""
  import soundfile  # the maintained libsndfile decoder: WAV and FLAC

  try:
    x, rate = soundfile.read(path, dtype="float32", always_2d=True)
  except Exception as e:  # libsndfile raises its own error types
    raise ConfigError(f"Cannot decode audio file {path}: {e}. Remove or re-encode it "
                      "(WAV or FLAC).") from None
  if x.shape[1] > 1:
    if not opts.mix_channels:
      raise ConfigError(f"{path} has {x.shape[1]} channels; set "
                        "data.audio_folder.mix_channels=True to average them to mono.")
    x = x.mean(axis=1, keepdims=True)
  x = x[:, 0]
  if opts.sample_rate and rate != opts.sample_rate:
    from scipy import signal
    g = math.gcd(rate, opts.sample_rate)
    x = signal.resample_poly(x, opts.sample_rate // g, rate // g).astype(np.float32)
    rate = opts.sample_rate
  return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16), rate


def _match(prompt: str, files: dict[str, str], lower: dict[str, str]) -> str | None:
  """The file a transcript names; case differences are forgiven when unambiguous."""
  if prompt in files:
    return prompt
  return lower.get(prompt.lower())


def utterances(folder: str, opts: AudioFolderOptions, report: dict) -> list[dict]:
  """Every utterance's metadata (voice, prompt, path, transcript), checking transcripts."""
  out = []
  for voice in voices(folder):
    files = audio_files(os.path.join(folder, voice))
    if not files:
      continue
    path = transcript_file(folder, voice)
    texts = read_transcripts(path) if path else {}
    lower = {}
    for p in files:
      lower.setdefault(p.lower(), p)
    by_file = {}
    for prompt, text in texts.items():
      match = _match(prompt, files, lower)
      if match is None:
        if opts.missing_files == "error":
          raise ConfigError(f"Transcript {path} names {prompt!r}, but {folder}/{voice}/ has no "
                            f"{prompt}.wav or .flac; add the file, remove the line, or set "
                            "data.audio_folder.missing_files='skip'.")
        report.setdefault("missing_files", []).append(f"{voice}/{prompt}")
        continue
      by_file[match] = text
    for prompt, file_path in files.items():
      text = by_file.get(prompt, "")
      if path and prompt not in by_file:
        report.setdefault("without_transcript", []).append(f"{voice}/{prompt}")
      out.append({"voice": voice, "language": language(voice), "prompt": prompt,
                  "path": file_path, "transcript": text,
                  "speech": not _BRACKETED.match(text) if text else True})
  return out


class Builder(tfds.core.GeneratorBasedBuilder):
  """Utterances of voice folders; configs are made per folder."""

  name = "audio_folder"
  VERSION = tfds.core.Version("1.0.0")
  MANUAL_DOWNLOAD_INSTRUCTIONS = "Set $AIGC_JAX_DATA to a folder holding <folder>/<voice>/*.wav."

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__,
        features=tfds.features.FeaturesDict({
            # The rate, voices and languages are known only from the files: set when preparing.
            # Raw samples (tfds' Audio feature needs TensorFlow); the rate is in info.metadata.
            "audio": tfds.features.Tensor(shape=(None,), dtype=np.int16, encoding="bytes"),
            "voice": tfds.features.ClassLabel(),
            "language": tfds.features.ClassLabel(),
            "transcript": tfds.features.Text(),
            "speech": np.bool_,
            "prompt": tfds.features.Text(),
        }),
        metadata=tfds.core.MetadataDict())

  def _split_generators(self, dl_manager):
    folder = os.path.join(str(dl_manager.manual_dir), self.builder_config.folder)
    opts = self.builder_config.options
    report = {}
    utts = utterances(folder, opts, report)
    rates = {}
    for u in utts:  # decoding is fast next to writing; every file once, errors before writing
      u["audio"], rate = decode(u["path"], opts)
      rates.setdefault(rate, u["path"])
    if len(rates) > 1:
      (r0, p0), (r1, p1) = list(rates.items())[:2]
      raise ConfigError(f"Audio files have different sample rates: {p0} is {r0} Hz, {p1} is "
                        f"{r1} Hz; set data.audio_folder.sample_rate to resample them to one.")
    self.info.metadata["sample_rate"] = next(iter(rates))
    self.info.features["voice"].names = sorted({u["voice"] for u in utts})
    self.info.features["language"].names = sorted({u["language"] for u in utts})
    report["utterances"] = {}
    by_split = {"train": [], "validation": [], "test": []}
    for u in utts:
      by_split[assign(u["prompt"], opts)].append(u)
    for k, v in by_split.items():
      report["utterances"][k] = len(v)
      if not v:
        raise ConfigError(f"No prompt of {folder} falls in split {k!r}; raise its fraction in "
                          "data.audio_folder or add recordings.")
    with open(os.path.join(self.data_dir, REPORT), "w") as f:  # what was skipped, beside the data
      json.dump(report, f, indent=1)
    if report.get("missing_files"):
      print(f"audio_folder/{self.builder_config.folder}: skipped {len(report['missing_files'])} "
            f"transcript lines naming no file (listed in {REPORT})", flush=True)
    return {k: self._generate_examples(v) for k, v in by_split.items()}

  def _generate_examples(self, utts):
    for u in utts:
      yield f"{u['voice']}/{u['prompt']}", {
          "audio": u["audio"], "voice": u["voice"], "language": u["language"],
          "transcript": u["transcript"], "speech": u["speech"], "prompt": u["prompt"]}
