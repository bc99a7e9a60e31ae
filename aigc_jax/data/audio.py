"""Audio input: utterances -> fixed windows of samples, on `data.audio.window > 0`.

Each utterance is read once into host memory (int16 stays int16) and thought of as preceded by
`context` samples of silence: the part of every example the model only reads. An example is
`window` samples, `audio` float in [-1, 1], with `target_mask` True where a real sample of the
utterance is scored (position >= context); the record's scalar features (voice, language,
label ...) come alongside, with `utterance` and `offset`: window position p holds sample
`offset + p - context` of that utterance.
- training split: windows starting every `stride` samples of every utterance, drawn in a
  shuffled order like the text windows (resumable: an example is its index);
- evaluation splits: every sample of every utterance scored exactly once, in chunks of
  `eval_window - context` scored samples (eval_window 0: window), each with its full context,
  the last one padded and masked.
`utterance(i)` returns a whole utterance (vocoding, listening). A data set's sample rate comes
from its `audio` feature (catalog) or `info.metadata["sample_rate"]` (audio_folder).
"""

import numpy as np

from aigc_jax.data import sources
from aigc_jax.errors import ConfigError

DEFAULTS = {
    "window": 0,  # samples per example; 0: audio is read as plain records
    "context": 0,  # leading samples of each example that are read, not scored (receptive field)
    "stride": 64,  # training windows start every this many samples
    # Samples per evaluation example; 0: `window`. Longer chunks re-read the context less often.
    "eval_window": 0,
    "key": "audio",  # the feature holding the samples
    "speech_only": False,  # drop utterances flagged speech=False (tones) where there is the flag
}


def sample_rate(builder, key: str = "audio") -> int:
  rate = (builder.info.metadata or {}).get("sample_rate") if builder.info.metadata else None
  if rate is None:
    rate = getattr(builder.info.features[key], "sample_rate", None)
  if not rate:
    raise ConfigError(f"Data set {builder.name!r} records no sample rate for {key!r} (neither an "
                      "Audio feature's sample_rate nor info.metadata['sample_rate']).")
  return int(rate)


def validate(ac) -> None:
  if ac.window <= 0:
    return
  if not 0 <= ac.context < ac.window:
    raise ConfigError(f"data.audio.context={ac.context} must be in [0, data.audio.window="
                      f"{ac.window}): each example needs scored samples after its context.")
  if ac.eval_window and not ac.context < ac.eval_window:
    raise ConfigError(f"data.audio.eval_window={ac.eval_window} must exceed data.audio.context="
                      f"{ac.context} (or be 0: data.audio.window).")
  if ac.stride <= 0:
    raise ConfigError(f"data.audio.stride={ac.stride} must be positive.")


def _scale(dtype) -> float:
  """Integer PCM -> [-1, 1]; float audio is taken as it is."""
  dtype = np.dtype(dtype)
  return 1.0 / 2.0**(8 * dtype.itemsize - 1) if dtype.kind == "i" else 1.0


class AudioSplit:
  """Windows over the utterances of one split (see the module docstring)."""

  def __init__(self, records: list[dict], *, window: int, context: int, stride: int, train: bool,
               rate: int, key: str = "audio"):
    if not records:
      raise ConfigError("The audio split is empty.")
    self.window, self.context, self.stride, self.train, self.rate = (window, context, stride,
                                                                     train, rate)
    clips = [np.asarray(r[key]) for r in records]
    if any(c.ndim != 1 for c in clips):
      raise ConfigError(f"Feature {key!r} is not mono ([T] samples); prepare the data set with "
                        "mixed channels (data.audio_folder.mix_channels=True).")
    self.lengths = np.asarray([len(c) for c in clips], np.int64)
    self.scale = _scale(clips[0].dtype)
    pad = np.zeros(context, clips[0].dtype)
    padded = [np.concatenate([pad, c]) for c in clips]
    self.starts = np.concatenate([[0], np.cumsum([len(p) for p in padded])])[:-1]
    self.buffer = np.concatenate(padded + [np.zeros(window, clips[0].dtype)])
    self.labels = {k: np.asarray([r[k] for r in records]).astype(np.int32)
                   for k, v in records[0].items()
                   if k != key and np.ndim(v) == 0 and np.asarray(v).dtype.kind in "biu"}
    scored = window - context
    if train:
      per = np.maximum((self.lengths + context - window) // stride, 0) + 1
    else:
      per = -(-self.lengths // scored)
    self.first = np.concatenate([[0], np.cumsum(per)])  # example index of each utterance's first
    self._arange = np.arange(window)

  def __len__(self) -> int:
    return int(self.first[-1])

  @property
  def num_samples(self) -> int:
    return int(self.lengths.sum())

  def example_spec(self) -> dict:
    spec = {"audio": ((self.window,), np.dtype(np.float32)),
            "target_mask": ((self.window,), np.dtype(bool)),
            "utterance": ((), np.dtype(np.int32)), "offset": ((), np.dtype(np.int32))}
    spec.update({k: ((), np.dtype(np.int32)) for k in self.labels})
    return spec

  def load(self, indices) -> dict:
    idx = np.asarray(indices, np.int64)
    u = np.searchsorted(self.first, idx, side="right") - 1
    k = idx - self.first[u]
    # Start of the window in the utterance's padded coordinates (its context of silence first).
    start = k * (self.stride if self.train else self.window - self.context)
    pos = start[:, None] + self._arange  # padded coordinates
    real = pos < (self.lengths[u] + self.context)[:, None]
    samples = self.buffer[self.starts[u][:, None] + np.where(real, pos, 0)]
    out = {"audio": np.where(real, samples.astype(np.float32) * self.scale, 0.0).astype(np.float32),
           "target_mask": real & (self._arange >= self.context),
           "utterance": u.astype(np.int32), "offset": start.astype(np.int32)}
    out.update({k: v[u] for k, v in self.labels.items()})
    return out

  def utterance(self, i: int) -> np.ndarray:
    """The whole utterance i as float samples in [-1, 1]."""
    a = self.starts[i] + self.context
    return self.buffer[a:a + self.lengths[i]].astype(np.float32) * self.scale


def load_split(data_config, split: str) -> AudioSplit:
  ac = data_config.audio
  validate(ac)
  builder = sources.get_builder(data_config)
  source = sources.get_source(builder, split)
  records = [source[i] for i in range(len(source))]
  if ac.speech_only and records and "speech" in records[0]:
    records = [r for r in records if r["speech"]]
  if records and ac.key not in records[0]:
    raise ConfigError(f"Data set {builder.name!r} has no {ac.key!r} feature (it has "
                      f"{sorted(records[0])}); set data.audio.key to the audio feature.")
  train = split == data_config.train_split
  return AudioSplit(records, window=ac.window if train else (ac.eval_window or ac.window),
                    context=ac.context, stride=ac.stride, train=train,
                    rate=sample_rate(builder, ac.key), key=ac.key)
