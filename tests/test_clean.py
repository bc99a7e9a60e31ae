import json
import os

import numpy as np
import pytest

from aigc_jax.data import clean, pipeline, sources
from aigc_jax.data.builders import text_files
from aigc_jax.errors import ConfigError
from experiments import common

PIPELINE = "nfkc|strip_control|whitespace|min_length(20, unit='words')|dedupe_exact|dedupe_near"


def _shakespeare_blocks(data_dir, n, words=100):
  path = os.path.join(data_dir, "tinyshakespeare", "input.txt")
  if not os.path.exists(path):
    pytest.skip("no tiny Shakespeare")
  w = open(path, encoding="utf-8").read().split()
  return [" ".join(w[i * words:(i + 1) * words]) for i in range(n)]


def _planted_corpus(folder, data_dir, seed=0):
  """300 distinct real documents + 30 exact copies (some differing only in Unicode form or
  spacing) + 30 near copies (2-5 words replaced) + 5 short junk files; all as files."""
  rng = np.random.default_rng(seed)
  docs = _shakespeare_blocks(data_dir, 300)
  folder.mkdir()
  for i, d in enumerate(docs):
    (folder / f"doc_{i:04d}.txt").write_text(d)
  vocab = " ".join(docs).split()
  sources_exact = rng.choice(300, 30, replace=False)
  for k, i in enumerate(sources_exact):
    d = docs[i]
    if k % 3 == 1:
      d = d.replace(" ", "  \t", 5) + "\n\n\n"  # same after whitespace cleanup
    elif k % 3 == 2:
      d = d.replace("a", "\uff41", 3) + "\u200b"  # full-width 'a' (NFKC) and a zero-width space
    (folder / f"x_exact_{k:02d}.txt").write_text(d)
  sources_near = rng.choice(300, 30, replace=False)
  for k, i in enumerate(sources_near):
    w = docs[i].split()
    for p in rng.choice(len(w), rng.integers(2, 6), replace=False):
      w[p] = vocab[rng.integers(len(vocab))]
    (folder / f"y_near_{k:02d}.txt").write_text(" ".join(w))
  for k in range(5):
    (folder / f"z_short_{k}.txt").write_text("too short to keep")
  return docs


def test_planted_duplicates_are_removed_and_reported(data_dir, tmp_path, tfds_dir):
  docs = _planted_corpus(tmp_path / "planted", data_dir)
  c = common.get_config().data
  c.update(dict(name="text_files/planted", data_dir=str(tmp_path), tfds_dir=tfds_dir))
  c.text.update(split_by="documents", train_fraction=0.8, clean=PIPELINE)
  kept = [t.decode() for s in ("train", "validation")
          for t in pipeline.load_split(c, s).columns["text"]]
  # No false removal: every distinct original survives, exactly once; the rest are near copies
  # that the sketch missed (at most 10%).
  assert all(kept.count(d) == 1 for d in docs)
  missed = len(kept) - len(docs)
  assert missed <= 3
  builder = sources.get_builder(c)
  report = json.load(open(os.path.join(builder.data_dir, text_files.REPORT)))
  removed = {s["op"]: s.get("removed", s.get("changed")) for s in report["stages"]}
  assert report["documents_in"] == 365 and report["documents_out"] == 300 + missed
  assert removed["min_length(20, unit='words')"] == 5
  assert removed["dedupe_exact"] == 30  # all planted exact copies, after normalisation
  assert removed["dedupe_near"] == 30 - missed >= 27
  assert removed["nfkc"] == 10 and removed["strip_control"] == 10
  assert report["words_out"] == (300 + missed) * 100
  c.update(tokenizer="byte", seq_len=16)  # tokenising adds its counts to the report
  n = sum(pipeline.load_split(c, s).num_tokens for s in ("train", "validation"))
  report = json.load(open(os.path.join(builder.data_dir, text_files.REPORT)))
  assert sum(report["tokens_out"]["byte"].values()) == n == report["bytes_out"] + 300 + missed - 2


def test_near_duplicate_recall_and_precision_at_scale(data_dir):
  """2,000 distinct documents, 200 near copies: recall >= 90%, no distinct document removed."""
  rng = np.random.default_rng(1)
  docs = _shakespeare_blocks(data_dir, 2000, words=80)
  near = []
  for i in rng.choice(2000, 200, replace=False):
    w = docs[i].split()
    for p in rng.choice(len(w), 4, replace=False):
      w[p] = "xyzzy"
    near.append(" ".join(w))
  out, report = clean.run(docs + near, "dedupe_near")
  assert out[:2000] == docs
  assert report["stages"][0]["removed"] >= 180


def test_map_ops():
  out, _ = clean.run(["ｆｕｌｌ\u00a0width ﬁ", "a\x00b\u200bc\td", "  x   y  \r\n\n\n\nz \n"],
                     "nfkc|strip_control|whitespace")
  assert out == ["full width fi", "abc d", "x y\n\nz"]


def test_unknown_or_bad_cleaning_op_fails_at_config_time(tmp_path):
  with pytest.raises(ConfigError, match="Unknown cleaning op 'dedupe'.*valid ops: .*dedupe_near"):
    clean.parse("nfkc|dedupe")
  with pytest.raises(ConfigError, match=r"threshold=1.5 is out of range; it must be in \(0.0, 1.0\)"):
    clean.parse("dedupe_near(1.5)")
  c = common.get_config().data
  c.update(dict(name="text_files/anything", data_dir=str(tmp_path)))
  c.text.clean = "lowercase"
  with pytest.raises(ConfigError, match="Unknown cleaning op 'lowercase'"):
    sources.get_builder(c)  # before the (missing) folder is looked at


def test_cleaning_everything_away_is_an_error(tmp_path, tfds_dir):
  (tmp_path / "tiny").mkdir()
  (tmp_path / "tiny" / "a.txt").write_text("short")
  c = common.get_config().data
  c.update(dict(name="text_files/tiny", data_dir=str(tmp_path), tfds_dir=tfds_dir))
  c.text.clean = "min_length(100)"
  with pytest.raises(ConfigError, match="removed every document"):
    pipeline.load_split(c, "train")
