import os

import numpy as np
import pytest

from aigc_jax.data import pipeline, sources, tokenizers
from aigc_jax.errors import ConfigError
from experiments import common


def _config(tfds_dir, data_dir, folder, **text):
  c = common.get_config().data
  c.update(dict(name=f"text_files/{folder}", tfds_dir=tfds_dir, data_dir=data_dir))
  c.text.update(text)
  return c


def _text(split):
  return "".join(t.decode("utf-8") for t in split.columns["text"])


def test_tinyshakespeare_gives_nanogpt_split(data_dir, tfds_dir):
  if not os.path.isdir(os.path.join(data_dir, "tinyshakespeare")):
    pytest.skip("no tiny Shakespeare")
  c = _config(tfds_dir, data_dir, "tinyshakespeare")
  train = _text(pipeline.load_split(c, "train"))
  val = _text(pipeline.load_split(c, "validation"))
  tok = tokenizers.CharTokenizer.fit(train)
  assert tok.vocab_size == 65
  assert len(tok.encode(train)) == 1_003_854 and len(tok.encode(val)) == 111_540
  assert train.startswith("First Citizen:")
  assert tok.decode(tok.encode(val)) == val


def test_documents_split_and_delimiter(tmp_path, tfds_dir):
  folder = tmp_path / "corpus"
  folder.mkdir()
  (folder / "a.txt").write_text("one\n===\ntwo\n===\nthree")
  (folder / "b.txt").write_text("four")
  c = _config(tfds_dir, str(tmp_path), "corpus", split_by="documents", delimiter="\n===\n",
              train_fraction=0.5)
  train = [t.decode() for t in pipeline.load_split(c, "train").columns["text"]]
  val = [t.decode() for t in pipeline.load_split(c, "validation").columns["text"]]
  assert len(train) == len(val) == 2
  assert sorted(train + val) == ["four", "one", "three", "two"]


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
  both = _text(pipeline.load_split(c, "train")) + _text(pipeline.load_split(c, "validation"))
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
  with pytest.raises(ConfigError, match="'z' is not in the tokenizer's vocabulary"):
    char.encode("z")
