import os
import shutil

import numpy as np
import pytest

from aigc_jax.data import pipeline, sources, tokenizers
from aigc_jax.data import tokens
from aigc_jax.errors import ConfigError
from aigc_jax import config as config_lib


def _config(tfds_dir, data_dir, folder, **text):
  c = config_lib.get_config().data
  c.update(dict(name=f"text_files/{folder}", tfds_dir=tfds_dir, data_dir=data_dir))
  c.text.update(text)
  return c


def _text(split):
  return "".join(t.decode("utf-8") for t in split.columns["text"])


def test_tinyshakespeare_gives_nanogpt_split(data_dir, tfds_dir):
  if not os.path.isdir(os.path.join(data_dir, "tinyshakespeare")):
    pytest.skip("no tiny Shakespeare")
  c = _config(tfds_dir, data_dir, "tinyshakespeare")
  train, val, test = (_text(pipeline.load_split(c, s)) for s in ("train", "validation", "test"))
  # nanoGPT's data/shakespeare_char/prepare.py: the first 90% of the characters train, the rest
  # validation. Its validation is our test split; the last 5% of its training side our validation.
  with open(os.path.join(data_dir, "tinyshakespeare", "input.txt"), encoding="utf-8") as f:
    raw = f.read()
  n = len(raw)
  assert train + val == raw[:int(n * 0.9)] and test == raw[int(n * 0.9):]
  assert (len(train), len(val), len(test)) == (953_662, 50_192, 111_540)
  tok = tokenizers.CharTokenizer.fit(train)
  assert tok.vocab_size == 65
  assert tok.decode(tok.encode(test)) == test


def test_documents_split_and_delimiter(tmp_path, tfds_dir):
  folder = tmp_path / "corpus"
  folder.mkdir()
  (folder / "a.txt").write_text("one\n===\ntwo\n===\nthree")
  (folder / "b.txt").write_text("four")
  c = _config(tfds_dir, str(tmp_path), "corpus", split_by="documents", delimiter="\n===\n",
              train_fraction=0.5, validation_fraction=0.0)
  train = [t.decode() for t in pipeline.load_split(c, "train").columns["text"]]
  test = [t.decode() for t in pipeline.load_split(c, "test").columns["text"]]
  assert len(train) == len(test) == 2
  assert sorted(train + test) == ["four", "one", "three", "two"]
  assert sorted(sources.get_builder(c).info.splits) == ["test", "train"]
  # With a validation split each document lands in exactly one of three, none empty.
  c.text.update(train_fraction=0.75, validation_fraction=1 / 3)
  parts = {s: [t.decode() for t in pipeline.load_split(c, s).columns["text"]]
           for s in ("train", "validation", "test")}
  assert [len(parts[s]) for s in ("train", "validation", "test")] == [2, 1, 1]
  assert sorted(sum(parts.values(), [])) == ["four", "one", "three", "two"]


def test_bad_text_input_is_a_clear_error(tmp_path, tfds_dir):
  with pytest.raises(ConfigError, match="does not exist"):
    pipeline.load_split(_config(tfds_dir, str(tmp_path), "missing"), "train")
  (tmp_path / "empty").mkdir()
  with pytest.raises(ConfigError, match="no non-empty files"):
    pipeline.load_split(_config(tfds_dir, str(tmp_path), "empty"), "train")
  bad = tmp_path / "bad"
  bad.mkdir()
  (bad / "x.txt").write_bytes(b"caf\xe9 ok")
  with pytest.raises(ConfigError, match=r"x.txt is not valid UTF-8 \(byte 3.*bad_utf8='replace'"):
    pipeline.load_split(_config(tfds_dir, str(tmp_path), "bad"), "train")
  c = _config(tfds_dir, str(tmp_path), "bad", bad_utf8="replace", train_fraction=0.5)
  both = "".join(_text(pipeline.load_split(c, s)) for s in ("train", "validation", "test"))
  assert both == "caf\ufffd ok"


def test_tokenizers_round_trip_and_save(tmp_path):
  text = "héllo, wörld 😀\n"
  char = tokenizers.CharTokenizer.fit(text)
  byte = tokenizers.ByteTokenizer()
  for tok in (char, byte):
    ids = tok.encode(text)
    assert ids.dtype == np.int32 and tok.decode(ids) == text
    tokenizers.save(tok, str(tmp_path / "tok.json"))
    again = tokenizers.load(str(tmp_path / "tok.json"))
    assert again.vocab_size == tok.vocab_size and again.decode(again.encode(text)) == text
  assert byte.vocab_size == 257 and byte.special_id("<|endoftext|>") == 256
  with pytest.raises(ConfigError, match="'z' are not in the tokenizer's vocabulary"):
    char.encode("z")


def _lm_config(tfds_dir, data_dir, folder, tokenizer, seq_len=64, **kw):
  c = _config(tfds_dir, data_dir, folder)
  c.update(dict(tokenizer=tokenizer, seq_len=seq_len, eval_split="test", **kw))
  return c


def _shakespeare(data_dir):
  if not os.path.isdir(os.path.join(data_dir, "tinyshakespeare")):
    pytest.skip("no tiny Shakespeare")


def test_lm_packed_and_windows_sequences(data_dir, tfds_dir):
  _shakespeare(data_dir)
  c = _lm_config(tfds_dir, data_dir, "tinyshakespeare", "char", seq_len=256)
  train, val = pipeline.load_split(c, "train"), pipeline.load_split(c, "test")
  assert (train.num_tokens, val.num_tokens) == (953_662, 111_540)
  assert tokens.get_tokenizer(c).vocab_size == 65
  # Packed: consecutive sequences overlap by one token; targets are inputs shifted by one.
  b = train.load([0, 1])
  assert b["input"].shape == (2, 256) and b["input"].dtype == np.int32
  np.testing.assert_array_equal(b["input"][:, 1:], b["target"][:, :-1])
  assert b["target"][0, -1] == b["input"][1, 0]
  assert len(train) == (953_662 - 1) // 256
  # Eval: every test token is a target exactly once; the tail is padded and masked.
  ev = val.load(np.arange(len(val)))
  assert ev["target_mask"].sum() == 111_540 - 1 and not ev["target_mask"][-1, -1]
  assert tokens.get_tokenizer(c).decode(ev["input"][0][:15]) == "?\n\nGREMIO:\nGood"
  # Windows: every start offset is one example.
  c.packing = "windows"
  win = pipeline.load_split(c, "train")
  assert len(win) == 953_662 - 256
  np.testing.assert_array_equal(win.load([7])["input"][0], train.stream[7:263])


def test_subword_tokenizer_trained_beside_the_data_and_loaded_by_name(data_dir, tfds_dir):
  _shakespeare(data_dir)
  c = _lm_config(tfds_dir, data_dir, "tinyshakespeare", "bpe:512")
  tok = tokens.get_tokenizer(c)
  builder = sources.get_builder(c)
  path = os.path.join(builder.data_dir, "tokenizer-bpe-512.json")
  assert os.path.exists(path) and tok.vocab_size == 512
  again = tokens.get_tokenizer(c)  # loaded, not retrained
  assert tokenizers.digest(again) == tokenizers.digest(tok)
  val = _text(pipeline.load_split(_config(tfds_dir, data_dir, "tinyshakespeare"), "test"))
  ids = tok.encode(val)
  assert tok.decode(ids) == val  # exact round trip, whitespace and all
  assert 1.5 < len(val) / len(ids) < 3.0  # ~250 merges beyond the bytes: ~1.8 chars a token
  stream = pipeline.load_split(c, "test").stream
  np.testing.assert_array_equal(stream, ids)


def test_documents_are_joined_with_end_of_text(tmp_path, tfds_dir):
  folder = tmp_path / "docs"
  folder.mkdir()
  for i, t in enumerate(["abc", "de", "fgh", "ij", "klm", "no"]):
    (folder / f"{i}.txt").write_text(t)
  for name in ("char", "byte", "unigram:267"):
    c = _lm_config(tfds_dir, str(tmp_path), "docs", name, seq_len=2)
    c.text.update(split_by="documents", train_fraction=0.5, validation_fraction=0.0)
    tok = tokens.get_tokenizer(c)
    stream = np.asarray(pipeline.load_split(c, "train").stream)
    docs = [tok.decode(p) for p in np.split(stream, np.flatnonzero(stream == tok.eot))]
    docs = [d for d in docs if d]
    assert (stream == tok.eot).sum() == 2 and sorted(docs) == sorted(set(docs))
    assert set(docs) <= {"abc", "de", "fgh", "ij", "klm", "no"}


def test_tokenizer_that_does_not_match_the_data_is_refused(tmp_path, tfds_dir):
  for name, text in (("one", "hello world, hello"), ("two", "something else entirely")):
    (tmp_path / name).mkdir()
    (tmp_path / name / "a.txt").write_text(text * 20)
  c1 = _lm_config(tfds_dir, str(tmp_path), "one", "char", seq_len=4)
  c2 = _lm_config(tfds_dir, str(tmp_path), "two", "char", seq_len=4)
  tokens.get_tokenizer(c1)
  tokens.get_tokenizer(c2)
  src = os.path.join(sources.get_builder(c1).data_dir, "tokenizer-char.json")
  dst = os.path.join(sources.get_builder(c2).data_dir, "tokenizer-char.json")
  shutil.copy(src, dst)
  with pytest.raises(ConfigError, match="does not match the data.*Delete the file"):
    tokens.get_tokenizer(c2)
  c2.tokenizer = src  # an explicit file is checked the same way
  with pytest.raises(ConfigError, match="does not match the data"):
    pipeline.load_split(c2, "train")
  with pytest.raises(ConfigError, match="Unknown tokenizer 'wordpiece'"):
    tokens.validate(_lm_config(tfds_dir, str(tmp_path), "one", "wordpiece"))
  with pytest.raises(ConfigError, match="are not in the tokenizer's vocabulary"):
    tokenizers.CharTokenizer.fit("abc").encode("abd")
