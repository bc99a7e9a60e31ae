"""Masked language modelling and text classification: the mask token, BERT corruption, a
bidirectional GPT with padding, the speaker data set, fine-tuning from GPT / MLM runs, resume."""

import os
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aigc_jax import models, train
from aigc_jax.data import pipeline, sources, tokenizers
from aigc_jax.data import tokens
from aigc_jax.data.builders import speakers
from aigc_jax.errors import ConfigError
from aigc_jax.tasks import mlm
from aigc_jax import config as config_lib
from experiments import mlm_shakespeare_char, speakers_shakespeare_char
from tests import helpers

PLAY = """A:
one line here
two lines here

B:
b speaks once

ENTER SOMEONE:

A:
a again
and again

C:
c talks

B:
b twice
"""


def _shakespeare(data_dir):
  if not os.path.isdir(os.path.join(data_dir, "tinyshakespeare")):
    pytest.skip("no tiny Shakespeare")


def test_mask_token_is_added_after_the_vocabulary_and_round_trips(tmp_path):
  char = tokenizers.CharTokenizer.fit("abc")
  tok, mask = tokenizers.with_special(char, tokenizers.MASK)
  assert (tok.vocab_size, mask) == (4, 3)
  np.testing.assert_array_equal(tok.encode("cab"), char.encode("cab"))  # old ids unchanged
  assert tok.decode([2, mask, 0]) == "ca"  # the mask is not text
  tokenizers.save(tok, str(tmp_path / "t.json"))
  again = tokenizers.load(str(tmp_path / "t.json"))
  assert again.vocab_size == 4 and tokenizers.with_special(again, tokenizers.MASK)[1] == 3
  # A tokenizer that has the token keeps its own id.
  byte = tokenizers.ByteTokenizer((tokenizers.EOT, tokenizers.MASK))
  assert tokenizers.with_special(byte, tokenizers.MASK) == (byte, 257)


def test_corruption_is_80_10_10_on_selected_valid_tokens_only():
  m = types.SimpleNamespace(select_rate=0.15, mask_prob=0.8, random_prob=0.1)
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, 50, (64, 512)), jnp.int32)
  valid = jnp.arange(512)[None] < 400
  out, sel = mlm.corrupt(jax.random.PRNGKey(0), tokens, valid, m, 50, 50)
  out, sel, tokens = np.asarray(out), np.asarray(sel), np.asarray(tokens)
  assert not sel[:, 400:].any() and np.array_equal(out[:, 400:], tokens[:, 400:])
  assert abs(sel[:, :400].mean() - 0.15) < 0.01
  assert np.array_equal(out[~sel], tokens[~sel])  # only selected tokens change
  masked = out[sel] == 50
  changed = (out[sel] != tokens[sel]) & ~masked
  assert abs(masked.mean() - 0.8) < 0.02
  assert abs(changed.mean() - 0.1 * 49 / 50) < 0.02  # a random draw may hit the same token
  assert out.max() <= 50 and (out[sel][~masked] != 50).all()  # random tokens are never the mask


def _encoder(**kw):
  return models.get_model({"name": "gpt", "vocab_size": 11, "block_size": 8, "num_layers": 1,
                           "num_heads": 2, "width": 16, **kw})


def test_bidirectional_gpt_sees_both_ways_and_ignores_padding():
  x = jnp.asarray([[1, 2, 3, 4, 5, 6, 7, 8]])
  for causal in (True, False):
    m = _encoder(causal=causal)
    v = m.init(jax.random.PRNGKey(0), x)
    y = x.at[0, 7].set(9)  # change the last token
    first = lambda t: m.apply(v, t)[0, 0]
    assert np.allclose(first(x), first(y)) == causal  # only the encoder sees the future
  # Trailing padding (ids < 0) is invisible to the real tokens, whatever fills it.
  m = _encoder(causal=False)
  v = m.init(jax.random.PRNGKey(0), x)
  a = jnp.asarray([[1, 2, 3, 4, 5, -1, -1, -1]])
  short = m.apply(v, a, features=True)[0, :5]
  np.testing.assert_allclose(short, m.apply(v, a.at[0, 6].set(-7), features=True)[0, :5],
                             atol=1e-6)
  assert not np.allclose(short, m.apply(v, x, features=True)[0, :5], atol=1e-4)
  with pytest.raises(ValueError, match="causal"):
    m.init(jax.random.PRNGKey(0), x, decode=True)


def test_classifier_encoder_has_the_pretrained_models_parameters():
  x = jnp.zeros((2, 8), jnp.int32)
  gpt = _encoder(causal=False).init(jax.random.PRNGKey(0), x)["params"]
  clf = models.get_model({"name": "text_classifier", "vocab_size": 11, "num_classes": 3,
                          "encoder": {"block_size": 8, "num_layers": 1, "num_heads": 2,
                                      "width": 16, "causal": False}})
  p = clf.init(jax.random.PRNGKey(1), x)["params"]
  same = jax.tree.map(lambda a, b: a.shape == b.shape, p["encoder"], gpt)
  assert all(jax.tree.leaves(same)) and set(p) == {"encoder", "head"}
  # Mean pooling over real tokens only: padding does not move the features.
  feats = lambda t: clf.apply({"params": p}, jnp.asarray(t), method=clf.features)
  np.testing.assert_allclose(feats([[3, 4, -1, -1]]), feats([[3, 4, -1, -1, -1, -1]]),
                             atol=1e-6)
  with pytest.raises(ConfigError, match="no field"):
    models.get_model({"name": "text_classifier", "encoder": {"widht": 3}})


def _speakers_config(tmp_path, **opts):
  folder = tmp_path / "raw" / "play"
  folder.mkdir(parents=True)
  (folder / "play.txt").write_text(PLAY)
  c = config_lib.get_config()
  c.data.update(name="speakers/play", data_dir=str(tmp_path / "raw"),
                tfds_dir=str(tmp_path / "tfds"))
  c.data.speakers.update({"num_speakers": 2, "test_fraction": 0.5, **opts})
  return c


def test_speakers_splits_by_speech_and_labels_lines(tmp_path):
  c = _speakers_config(tmp_path)
  b = sources.get_builder(c.data)
  assert b.info.features["label"].names == ["A", "B"]  # most speeches first; C has one
  rows = {s: [sources.get_source(b, s)[i] for i in range(b.info.splits[s].num_examples)]
          for s in ("train", "test")}
  texts = {s: sorted(r["text"].decode() for r in rs) for s, rs in rows.items()}
  # Each speaker's two speeches: one per side, the whole speech on one side, names removed.
  everything = sorted(texts["train"] + texts["test"])
  assert everything == sorted(["one line here", "two lines here", "a again", "and again",
                               "b speaks once", "b twice"])
  for speech in (["one line here", "two lines here"], ["a again", "and again"]):
    assert set(speech) <= set(texts["train"]) or set(speech) <= set(texts["test"])
  assert sorted(r["label"] for r in rows["test"]) in ([0, 0, 1], [0, 1, 1], [0, 1])


def test_speakers_bad_options_are_clear(tmp_path):
  c = _speakers_config(tmp_path, num_speakers=5)
  with pytest.raises(ConfigError, match="fewer than data.speakers.num_speakers=5"):
    sources.get_builder(c.data)
  c.data.speakers.unit = "word"
  with pytest.raises(ConfigError, match="unit"):
    sources.get_builder(c.data)


def test_examples_packing_pads_each_record_and_keeps_labels(tmp_path):
  c = _speakers_config(tmp_path, unit="speech")
  c.data.update(tokenizer="char", packing="examples", seq_len=10)
  split = pipeline.load_split(c.data, "train")
  x, y = split.columns["input"], split.columns["label"]
  assert x.shape == (len(y), 10) and x.dtype == np.int32
  tok = tokens.get_tokenizer(c.data)
  for row in x:
    n = int((row >= 0).sum())
    assert (row[n:] == tokens.PAD).all() and 0 < n <= 10  # truncated to seq_len, then padded
    assert len(tok.decode(row[:n])) == n


def _mlm_config(data_dir, tfds_dir, steps=6):
  _shakespeare(data_dir)
  c = mlm_shakespeare_char.get_config("quick")
  c.cpu_devices = 0
  c.model.update(block_size=16, num_layers=1, num_heads=2, width=16)
  c.data.update(data_dir=data_dir, tfds_dir=tfds_dir, seq_len=16, batch_size=16,
                eval_batch_size=4096)
  c.optim.warmup_steps = 2
  c.train.update(num_steps=steps, log_every_steps=2, eval_every_steps=steps,
                 checkpoint_every_steps=2, progress_bar=False)
  return c


def test_mlm_adds_a_mask_token_trains_and_resumes_exactly(data_dir, tfds_dir, tmp_path,
                                                          monkeypatch):
  c = _mlm_config(data_dir, tfds_dir)
  s1, s2 = helpers.crash_and_resume(c, tmp_path, monkeypatch, after_batches=3)
  assert s1 == s2 and s1["validation_loss"] < np.log(66) + 0.1  # at or below chance already
  tok = tokenizers.load(str(tmp_path / "straight" / "tokenizer.json"))
  assert tok.vocab_size == 66 and tok.special_id(tokenizers.MASK) == 65
  sample = (tmp_path / "straight" / "samples" / "samples_step_000006.txt").read_text()
  assert "masked (" in sample and "_" in sample.split("masked (")[1]


def test_mlm_config_errors(data_dir, tfds_dir, tmp_path):
  c = _mlm_config(data_dir, tfds_dir)
  c.model.vocab_size = 65  # the 65 characters, no room for the mask
  with pytest.raises(ConfigError, match="leaves no id for the mask token"):
    train.run(c, str(tmp_path / "a"))
  c = _mlm_config(data_dir, tfds_dir)
  c.model.causal = True
  with pytest.raises(ConfigError, match="bidirectional"):
    train.run(c, str(tmp_path / "b"))
  c = _mlm_config(data_dir, tfds_dir)
  c.mlm.select_rate = 1.5
  with pytest.raises(ConfigError, match="select_rate"):
    train.run(c, str(tmp_path / "c"))


def test_speaker_classifier_fine_tunes_an_mlm_run(data_dir, tfds_dir, tmp_path, monkeypatch):
  pre = _mlm_config(data_dir, tfds_dir, steps=4)
  pre_dir = str(tmp_path / "mlm")
  train.run(pre, pre_dir)
  c = speakers_shakespeare_char.classifier_config("mlm", 10, 0, pre_dir)
  c.cpu_devices = 0
  c.model.encoder.update(block_size=16, num_layers=1, num_heads=2, width=16)
  c.data.update(data_dir=data_dir, tfds_dir=tfds_dir, seq_len=16, batch_size=32)
  c.train.update(num_steps=6, log_every_steps=2, checkpoint_every_steps=2, progress_bar=False)
  s1, s2 = helpers.crash_and_resume(c, tmp_path / "ft", monkeypatch, after_batches=3)
  assert s1 == s2
  # The probe row: the frozen encoder keeps the MLM run's weights bit for bit.
  p = speakers_shakespeare_char.classifier_config("mlm", 0, 0, pre_dir, probe=True)
  p.cpu_devices = 0
  p.model.encoder.update(block_size=16, num_layers=1, num_heads=2, width=16)
  p.data.update(data_dir=data_dir, tfds_dir=tfds_dir, seq_len=16, batch_size=64)
  p.train.update(num_steps=2, log_every_steps=1, checkpoint_every_steps=2, progress_bar=False)
  s = train.run(p, str(tmp_path / "probe"))
  assert {"probe_accuracy", "knn_accuracy"} <= set(s)
  jax.tree.map(np.testing.assert_array_equal, helpers.final_params(str(tmp_path / "probe"))[1]
               ["encoder"], helpers.final_params(pre_dir)[1])
  # A classifier of another width cannot load those weights: named before compiling.
  c.model.encoder.width = 32
  with pytest.raises(ConfigError, match="shape mismatch"):
    train.run(c, str(tmp_path / "wrong"))
