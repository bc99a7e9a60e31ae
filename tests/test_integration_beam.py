"""The text_files builder prepared by Apache Beam (local DirectRunner) equals the local build."""

import json
import os

import numpy as np
import pytest

from aigc_jax.data import clean, pipeline, sources
from aigc_jax.data.builders import text_files
from aigc_jax.errors import ConfigError
from aigc_jax import config as config_lib
from tests import test_data_clean

beam = pytest.importorskip("apache_beam", reason="Apache Beam not installed (pip install apache-beam)")
from apache_beam.options import pipeline_options  # noqa: E402  (after the check above)

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
  c = config_lib.get_config().data
  c.update(dict(name="text_files/plays", data_dir=raw, tfds_dir=tfds_dir,
                beam_options=beam_options))
  c.text.update(split_by="documents", train_fraction=0.75, clean="nfkc|whitespace")
  return c


def _shard(c, split, folder="plays"):
  b = sources.get_builder(c)
  name = f"text_files-{split}.array_record-00000-of-00001"
  return open(os.path.join(b.data_dir, name), "rb").read()


def test_beam_build_equals_local_build(tmp_path, data_dir):
  raw = _corpus(tmp_path, data_dir)
  local = _config(raw, str(tmp_path / "local"), "")
  beamed = _config(raw, str(tmp_path / "beam"), RUNNER)
  for split in ("train", "validation", "test"):
    a = pipeline.load_split(local, split).columns["text"]
    b = pipeline.load_split(beamed, split).columns["text"]
    assert len(a) == {"train": 28, "validation": 2, "test": 10}[split]
    assert a.tolist() == b.tolist()  # same documents in the same order
    assert all(not t.decode().endswith(" \uff21") for t in b)  # cleaned by the workers
    assert _shard(local, split) == _shard(beamed, split)  # byte-identical array_record files


MULTI = "--runner=DirectRunner --direct_running_mode=multi_processing --direct_num_workers=2"
FULL = ("nfkc|strip_control|whitespace|min_length(20, unit='words')|pii|"
        "gopher_repetition|dedupe_exact|dedupe_near(0.5)")


def _planted(tmp_path, data_dir):
  """Files of 1-3 delimited documents: real passages, exact and near copies, junk, PII."""
  path = os.path.join(data_dir, "tinyshakespeare", "input.txt")
  if not os.path.exists(path):
    pytest.skip("no tiny Shakespeare")
  words = open(path, encoding="utf-8").read().split()
  docs = [" ".join(words[i * 60:(i + 1) * 60]) for i in range(120)]
  rng = np.random.default_rng(3)
  for i in rng.choice(120, 12, replace=False):  # near copies: 3 of 60 words replaced
    w = docs[i].split()
    for p in rng.choice(60, 3, replace=False):
      w[p] = "zounds"
    docs.append(" ".join(w))
  docs += [docs[5], "  " + docs[7].replace(" ", "\t", 3), "too short", docs[9] + " mail a@b.org"]
  folder = tmp_path / "planted"
  folder.mkdir()
  order = rng.permutation(len(docs))
  for f, idx in enumerate(np.array_split(order, 60)):
    (folder / f"{f:03d}.txt").write_text("\n@@\n".join(docs[i] for i in idx))
  return str(tmp_path)


def test_beam_on_two_workers_keeps_what_the_local_path_keeps(tmp_path, data_dir):
  """The whole preparation, corpus-wide steps included, on Beam's DirectRunner with 2 worker
  processes: the same documents in both splits, byte-identical shards, the same report."""
  raw = _planted(tmp_path, data_dir)
  reports = []
  for name, options in (("local", ""), ("beam", MULTI)):
    c = _config(raw, str(tmp_path / name), options)
    c.update(name="text_files/planted")
    c.text.update(clean=FULL, delimiter="\n@@\n", train_fraction=0.8)
    for split in ("train", "validation", "test"):
      pipeline.load_split(c, split)
    reports.append(json.load(open(os.path.join(sources.get_builder(c).data_dir,
                                               text_files.REPORT))))
    if name == "local":
      local = c
    else:
      beamed = c
  for split in ("train", "validation", "test"):
    assert _shard(local, split, "planted") == _shard(beamed, split, "planted")
  for r in reports:  # how much work found the groups differs (local skips joined pairs)
    r.pop("seconds", None), r.pop("phase_seconds", None)
    near = r["stages"][-1]
    assert near["rejected_by_exact_jaccard"] <= near.pop("pairs_checked")
    near.pop("rejected_by_exact_jaccard")
  a, b = reports
  assert a == b
  stages = {s["op"]: s for s in a["stages"]}
  assert stages["dedupe_exact"]["removed"] == 2  # the copy and the one differing in spaces
  assert stages["dedupe_near(0.5)"]["removed"] == 13  # 12 near copies and the PII variant
  assert stages["min_length(20, unit='words')"]["reasons"] == {"too_short": 1}
  assert stages["pii"]["changed"] == 1
  assert a["documents_out"] == 120


def test_beam_keeps_what_the_local_path_keeps_through_chains(tmp_path):
  """test_data_clean.chained_corpus (chains q ~ r ~ s with q unlike s, planted copies) as files:
  Beam on 2 worker processes keeps exactly the documents the local path keeps, chains' ends
  included, with the same near-duplicate counts in its report."""
  docs, _, chains = test_data_clean.chained_corpus(seed=1)
  folder, keys = tmp_path / "chains", []
  folder.mkdir()
  for f, idx in enumerate(np.array_split(np.arange(len(docs)), 40)):
    (folder / f"{f:03d}.txt").write_text("\n@@\n".join(docs[i] for i in idx))
    keys += [(f << 32) | part for part in range(len(idx))]
  opts = text_files.TextOptions(split_by="documents", delimiter="\n@@\n",
                                clean="dedupe_exact|dedupe_near(0.5)")
  files = text_files.text_file_paths(str(folder))
  with clean.clean_stream(text_files.iter_documents(files, opts, {}), opts.clean,
                          workers=1) as r:
    local, local_report = [k for k, _ in r], r.report
  corpus = clean.BeamCorpus(list(enumerate(files)), text_files.BeamReader(opts), opts.clean, 0,
                            (0.8,), str(tmp_path / "report.json"), {})
  with beam.Pipeline(options=pipeline_options.PipelineOptions(MULTI.split())) as p:
    ([p | f"Split{i}" >> corpus.split(i) for i in (0, 1)] | beam.Flatten()
     | beam.Map(lambda kv: kv[0]) | beam.io.WriteToText(str(tmp_path / "kept")))
  beamed = sorted(int(x) for f in tmp_path.glob("kept*") for x in open(f))
  assert beamed == local
  assert {keys[i] for chain in chains for i in chain[::2]} <= set(local)
  assert not {keys[r] for _, r, _ in chains} & set(local)
  beam_near = json.load(open(tmp_path / "report.json"))["stages"][-1]
  assert [beam_near[k] for k in ("removed", "clusters")] == [
      local_report["stages"][-1][k] for k in ("removed", "clusters")]


def test_beam_refuses_a_character_cut(tmp_path, data_dir):
  raw = _corpus(tmp_path, data_dir, n=4)
  c = _config(raw, str(tmp_path / "beam"), RUNNER)
  c.text.update(clean="", split_by="characters")
  with pytest.raises(ConfigError, match="split_by='documents'"):
    pipeline.load_split(c, "train")


def test_beam_refuses_to_clean_everything_away(tmp_path, data_dir):
  raw = _corpus(tmp_path, data_dir, n=4)
  c = _config(raw, str(tmp_path / "beam"), RUNNER)
  c.text.clean = "min_length(1000000)"
  # Whichever step of the graph notices first fails the build: ours, or tfds' own check.
  with pytest.raises(Exception, match="removed every document|0 document|generated examples is 0"):
    pipeline.load_split(c, "train")
