"""audio_folder: voice folders -> splits by prompt; windows and whole-utterance evaluation."""

import json
import os

import numpy as np
import pytest
import soundfile
import tensorflow_datasets as tfds

from aigc_jax import config as config_lib
from aigc_jax.data import audio, pipeline, sources
from aigc_jax.data.builders import audio_folder
from aigc_jax.errors import ConfigError


def _write(path, seconds=0.3, rate=8000, channels=1, seed=0, fmt=None):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  x = np.random.default_rng(seed).uniform(-0.5, 0.5, (int(seconds * rate), channels))
  soundfile.write(path, x if channels > 1 else x[:, 0], rate, subtype="PCM_16", format=fmt)


def _folder(root, prompts=("digits/1", "digits/2", "hello", "beep", "bye", "a", "b", "c", "d",
                           "e", "f", "g")):
  """Two voices, the same prompts each (one as FLAC), and an English transcript."""
  for v, voice in enumerate(("en_US_f_A", "fr_CA_f_B")):
    for i, p in enumerate(prompts):
      ext = ".flac" if p == "hello" else ".wav"
      _write(os.path.join(root, "corpus", voice, p + ext), seed=10 * v + i)
  with open(os.path.join(root, "corpus", "transcripts-en.txt"), "w") as f:
    f.write("; comment\n\ndigits/1: One.\ndigits/2: two\nhello: Hello there [sic].\n"
            "beep: [a simple beep tone]\n")
  return root


def _config(raw, tfds_dir, **opts):
  c = config_lib.get_config()
  c.data.update(name="audio_folder/corpus", data_dir=str(raw), tfds_dir=str(tfds_dir))
  c.data.audio_folder.update(opts)
  return c


def _records(c, split):
  b = sources.get_builder(c.data)
  src = sources.get_source(b, split)
  return b, [src[i] for i in range(len(src))]


def test_splits_by_prompt_for_every_voice_with_labels_and_transcripts(tmp_path):
  c = _config(_folder(tmp_path / "raw"), tmp_path / "tfds", test_fraction=0.25,
              validation_fraction=0.2)
  sides = {}
  for split in ("train", "validation", "test"):
    b, recs = _records(c, split)
    for r in recs:
      prompt, voice = r["prompt"].decode(), b.info.features["voice"].names[r["voice"]]
      sides.setdefault(prompt, set()).add((split, voice))
      assert r["audio"].dtype == np.int16 and len(r["audio"]) == 2400
      if voice.startswith("en"):
        assert b.info.features["language"].names[r["language"]] == "en"
        text = {"digits/1": "One.", "hello": "Hello there [sic].", "beep": "[a simple beep tone]"}
        if prompt in text:
          assert r["transcript"].decode() == text[prompt]
        assert r["speech"] == (prompt != "beep")  # only a wholly bracketed text is a tone
      else:
        assert r["transcript"] == b"" and r["speech"]  # no French transcript file
  assert b.info.metadata["sample_rate"] == 8000
  assert b.info.features["voice"].names == ["en_US_f_A", "fr_CA_f_B"]
  # Every prompt on exactly one side, with both voices there; all three sides are used.
  assert all(len({s for s, _ in v}) == 1 and len(v) == 2 for v in sides.values())
  assert {s for v in sides.values() for s, _ in v} == {"train", "validation", "test"}
  for prompt, v in sides.items():  # the side is the seeded hash of the prompt's name
    assert next(iter(v))[0] == audio_folder.assign(prompt, audio_folder.AudioFolderOptions(
        test_fraction=0.25, validation_fraction=0.2))


def test_bad_files_are_errors_naming_them(tmp_path):
  raw = _folder(tmp_path / "raw")
  with open(raw / "corpus" / "transcripts-en.txt", "a") as f:
    f.write("gone/missing: Not recorded.\n")
  with pytest.raises(ConfigError, match=r"names 'gone/missing'.*missing_files='skip'"):
    sources.get_builder(_config(raw, tmp_path / "t1").data)
  b = sources.get_builder(_config(raw, tmp_path / "t2", missing_files="skip").data)
  with open(os.path.join(b.data_dir, audio_folder.REPORT)) as f:
    assert json.load(f)["missing_files"] == ["en_US_f_A/gone/missing"]

  _write(str(raw / "corpus" / "fr_CA_f_B" / "fast.wav"), rate=16000)
  with pytest.raises(ConfigError, match=r"different sample rates.*fast.wav is 16000 Hz"):
    sources.get_builder(_config(raw, tmp_path / "t3", missing_files="skip").data)
  b = sources.get_builder(_config(raw, tmp_path / "t4", missing_files="skip",
                                  sample_rate=8000).data)
  assert b.info.metadata["sample_rate"] == 8000

  _write(str(raw / "corpus" / "fr_CA_f_B" / "stereo.wav"), channels=2)
  with pytest.raises(ConfigError, match=r"stereo.wav has 2 channels.*mix_channels=True"):
    sources.get_builder(_config(raw, tmp_path / "t5", missing_files="skip",
                                sample_rate=8000).data)
  (raw / "corpus" / "fr_CA_f_B" / "broken.wav").write_bytes(b"RIFF not really audio")
  with pytest.raises(ConfigError, match=r"Cannot decode audio file .*broken.wav"):
    sources.get_builder(_config(raw, tmp_path / "t6", missing_files="skip", sample_rate=8000,
                                mix_channels=True).data)
  os.makedirs(tmp_path / "empty" / "corpus" / "en_US_f_A")
  with pytest.raises(ConfigError, match=r"no voice sub-folder"):
    sources.get_builder(_config(tmp_path / "empty", tmp_path / "t7").data)


def _split(lengths, *, window, context, stride, train):
  recs = [{"audio": (np.arange(n) % 1000 + 1).astype(np.int16), "voice": i}
          for i, n in enumerate(lengths)]
  return audio.AudioSplit(recs, window=window, context=context, stride=stride, train=train,
                          rate=8000)


def test_eval_chunks_score_every_sample_once_with_its_context():
  s = _split([50, 7, 23], window=16, context=6, stride=4, train=False)
  batch = s.load(np.arange(len(s)))
  got = {u: np.zeros(n, int) for u, n in enumerate(s.lengths)}
  for x, m, u, off in zip(batch["audio"], batch["target_mask"], batch["utterance"],
                          batch["offset"]):
    real = s.utterance(u)
    for p in range(16):
      i = off + p - 6  # window position p holds utterance sample off + p - context
      assert x[p] == (real[i] if 0 <= i < len(real) else 0.0)  # silence before, padding after
      if m[p]:
        got[u][i] += 1
  assert all((c == 1).all() for c in got.values())
  assert s.num_samples == 80 and batch["voice"].tolist() == [0] * 5 + [1] + [2] * 3


def test_training_windows_start_every_stride_and_pad_short_utterances():
  s = _split([40, 5], window=16, context=6, stride=4, train=True)
  assert len(s) == (40 + 6 - 16) // 4 + 1 + 1
  batch = s.load(np.arange(len(s)))
  assert batch["offset"][:8].tolist() == list(range(0, 32, 4))
  assert batch["target_mask"][-1].sum() == 5 and batch["utterance"][-1] == 1
  np.testing.assert_array_equal(batch["audio"][1, 6:], s.utterance(0)[4 - 6 + 6:4 + 10])
  ac = config_lib.get_config().data.audio
  ac.update(window=16, context=16)
  with pytest.raises(ConfigError, match="context=16 must be in"):
    audio.validate(ac)


def test_real_speech_through_the_pipeline(data_dir, tfds_dir):
  c = config_lib.get_config()
  c.data.update(name="audio_folder/asterisk_sounds", data_dir=data_dir, tfds_dir=tfds_dir)
  c.data.audio_folder.missing_files = "skip"
  c.data.audio.update(window=600, context=100)
  b = sources.get_builder(c.data)
  assert {k: v.num_examples for k, v in b.info.splits.items()} == {
      "train": 2133, "validation": 285, "test": 413}
  assert b.info.features["voice"].num_classes == 5
  prompts = {}
  for split in ("train", "validation", "test"):
    src = sources.get_source(b, split)
    prompts[split] = {src[i]["prompt"] for i in range(len(src))}
  assert not prompts["train"] & prompts["test"] and not prompts["validation"] & prompts["test"]
  test = pipeline.load_split(c.data, "test")
  assert test.rate == 8000 and sum(len(test.utterance(i)) for i in range(3)) > 8000
  batch = test.load(np.arange(4))
  assert batch["audio"].shape == (4, 600) and np.abs(batch["audio"]).max() <= 1.0


def test_catalog_audio_through_the_same_path():
  c = config_lib.get_config()
  c.data.update(name="speech_commands")
  c.data.audio.update(window=40, context=10, stride=2)
  with tfds.testing.mock_data(num_examples=6):
    train = pipeline.load_split(c.data, "train")
    assert train.rate == 16000  # the catalog's Audio feature, read without TensorFlow
    batch = train.load(np.arange(len(train)))
  assert batch["label"].shape == (len(train),) and batch["audio"].dtype == np.float32
  assert np.abs(batch["audio"]).max() <= 1.0
