"""The text_files builder prepared by Apache Beam (local DirectRunner) equals the local build."""

import os

import pytest

from aigc_jax.data import pipeline, sources
from aigc_jax.errors import ConfigError
from experiments import common

beam = pytest.importorskip("apache_beam", reason="Apache Beam not installed (pip install apache-beam)")

RUNNER = "--runner=BundleBasedDirectRunner"  # Beam's local direct runner, no job server


def _corpus(tmp_path, data_dir, n=40):
  path = os.path.join(data_dir, "tinyshakespeare", "input.txt")
  if not os.path.exists(path):
    pytest.skip("no tiny Shakespeare")
  lines = open(path, encoding="utf-8").read().split("\n\n")
  folder = tmp_path / "plays"
  folder.mkdir()
  for i in range(n):
    (folder / f"{i:03d}.txt").write_text("  ".join(lines[i * 5:(i + 1) * 5]) + " \uff21")
  (folder / "empty.txt").write_text("")
  return str(tmp_path)


def _config(raw, tfds_dir, beam_options):
  c = common.get_config().data
  c.update(dict(name="text_files/plays", data_dir=raw, tfds_dir=tfds_dir,
                beam_options=beam_options))
  c.text.update(split_by="documents", train_fraction=0.75, clean="nfkc|whitespace")
  return c


def _shard(c, split):
  b = sources.get_builder(c)
  name = f"text_files-{split}.array_record-00000-of-00001"
  return open(os.path.join(b.data_dir, name), "rb").read()


def test_beam_build_equals_local_build(tmp_path, data_dir):
  raw = _corpus(tmp_path, data_dir)
  local = _config(raw, str(tmp_path / "local"), "")
  beamed = _config(raw, str(tmp_path / "beam"), RUNNER)
  for split in ("train", "validation"):
    a = pipeline.load_split(local, split).columns["text"]
    b = pipeline.load_split(beamed, split).columns["text"]
    assert len(a) == {"train": 30, "validation": 10}[split]
    assert a.tolist() == b.tolist()  # same documents in the same order
    assert all(not t.decode().endswith(" \uff21") for t in b)  # cleaned by the workers
    assert _shard(local, split) == _shard(beamed, split)  # byte-identical array_record files


def test_beam_refuses_corpus_wide_steps(tmp_path, data_dir):
  raw = _corpus(tmp_path, data_dir, n=4)
  c = _config(raw, str(tmp_path / "beam"), RUNNER)
  c.text.clean = "nfkc|dedupe_exact"
  with pytest.raises(ConfigError, match=r"\['dedupe_exact'\].*one machine"):
    pipeline.load_split(c, "train")
  c.text.update(clean="", split_by="characters")
  with pytest.raises(ConfigError, match="split_by='documents'"):
    pipeline.load_split(c, "train")
