import itertools
import json
import os

import numpy as np
import pytest

from aigc_jax.data import clean, dedupe, pipeline, sources
from aigc_jax.data.builders import text_files
from aigc_jax.errors import ConfigError
from aigc_jax import config as config_lib
from tests import test_data_quality

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
  c = config_lib.get_config().data
  c.update(dict(name="text_files/planted", data_dir=str(tmp_path), tfds_dir=tfds_dir))
  c.text.update(split_by="documents", train_fraction=0.8, clean=PIPELINE)
  kept = [t.decode() for s in ("train", "validation", "test")
          for t in pipeline.load_split(c, s).columns["text"]]
  # No false removal and no miss: every distinct original survives exactly once, and every
  # planted exact and near copy is gone.
  assert all(kept.count(d) == 1 for d in docs)
  assert len(kept) == len(docs)
  builder = sources.get_builder(c)
  report = json.load(open(os.path.join(builder.data_dir, text_files.REPORT)))
  removed = {s["op"]: s.get("removed", s.get("changed")) for s in report["stages"]}
  assert report["documents_in"] == 365 and report["documents_out"] == 300
  assert removed["min_length(20, unit='words')"] == 5
  assert removed["dedupe_exact"] == 30  # all planted exact copies, after normalisation
  assert removed["dedupe_near"] == 30
  assert removed["nfkc"] == 10 and removed["strip_control"] == 10
  assert report["words_out"] == 300 * 100
  c.update(tokenizer="byte", seq_len=16)  # tokenising adds its counts to the report
  n = sum(pipeline.load_split(c, s).num_tokens for s in ("train", "validation", "test"))
  report = json.load(open(os.path.join(builder.data_dir, text_files.REPORT)))
  assert sum(report["tokens_out"]["byte"].values()) == n == report["bytes_out"] + 300 - 3


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
  assert report["stages"][0]["removed"] == 200  # 4 of 80 words: Jaccard ~0.6, all found


def test_map_ops():
  out, _ = clean.run(["ｆｕｌｌ\u00a0width ﬁ", "a\x00b\u200bc\td", "  x   y  \r\n\n\n\nz \n"],
                     "nfkc|strip_control|whitespace")
  assert out == ["full width fi", "abc d", "x y\n\nz"]


def test_unknown_or_bad_cleaning_op_fails_at_config_time(tmp_path):
  with pytest.raises(ConfigError, match="Unknown cleaning op 'dedupe'.*valid ops: .*dedupe_near"):
    clean.parse("nfkc|dedupe")
  with pytest.raises(ConfigError, match=r"threshold=1.5 is out of range; it must be in \(0.0, 1"):
    clean.parse("dedupe_near(1.5)")
  c = config_lib.get_config().data
  c.update(dict(name="text_files/anything", data_dir=str(tmp_path)))
  c.text.clean = "lowercase"
  with pytest.raises(ConfigError, match="Unknown cleaning op 'lowercase'"):
    sources.get_builder(c)  # before the (missing) folder is looked at


def test_cleaning_everything_away_is_an_error(tmp_path, tfds_dir):
  (tmp_path / "tiny").mkdir()
  (tmp_path / "tiny" / "a.txt").write_text("short")
  c = config_lib.get_config().data
  c.update(dict(name="text_files/tiny", data_dir=str(tmp_path), tfds_dir=tfds_dir))
  c.text.clean = "min_length(100)"
  with pytest.raises(ConfigError, match="removed every document"):
    pipeline.load_split(c, "train")


def _jaccard(a: str, b: str, n: int = 5) -> float:
  """Word 5-gram Jaccard with Python sets: the ground truth, independent of the engine's hashes."""
  def sh(t):
    w = t.lower().split()
    return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}
  x, y = sh(a), sh(b)
  return len(x & y) / len(x | y)


def _variants(base: list[str], rng, edits: int) -> str:
  w = list(base)
  for p in rng.choice(len(w), edits, replace=False):
    w[p] = f"edit{rng.integers(10**6)}"
  return " ".join(w)


def _random_words(rng, n: int) -> list[str]:
  """Words drawn from 50,000: two independent passages share no 5-gram."""
  return [f"w{x}" for x in rng.integers(0, 50000, n)]


def chained_corpus(seed: int = 0, n: int = 300, chains: int = 40, copies: int = 80):
  """(documents in key order, planted (source, copy) pairs, chains (q, r, s)), as indices: n
  random passages of 100 words; `chains` runs of three 100-word windows of one text, 30 words
  apart (q ~ r ~ s at Jaccard 0.52, q and s at 0.23), spread over the corpus in that order; a
  copy with 2-6 words replaced of each chain's s and of other passages, somewhere after it."""
  rng = np.random.default_rng(seed)
  items = [(float(i), " ".join(_random_words(rng, 100))) for i in range(n)]  # (position, text)
  firsts = []
  for _ in range(chains):
    w = _random_words(rng, 160)
    firsts.append(len(items))
    items += [(float(p), " ".join(w[o:o + 100])) for p, o in zip(np.sort(rng.uniform(0, n, 3)),
                                                                  (0, 30, 60))]
  planted = []
  for src in [f + 2 for f in firsts] + rng.choice(n, copies - chains, replace=False).tolist():
    pos, text = items[src]
    items.append((pos + rng.uniform(0.01, n + 1 - pos), _variants(text.split(), rng,
                                                                   int(rng.integers(2, 7)))))
    planted.append((src, len(items) - 1))
  order = sorted(range(len(items)), key=lambda i: items[i][0])
  where = {i: k for k, i in enumerate(order)}
  return ([items[i][1] for i in order], [(where[s], where[c]) for s, c in planted],
          [tuple(where[f + k] for k in range(3)) for f in firsts])


def test_local_and_beam_pair_a_bucket_alike():
  """Beam pairs each LSH bucket with dedupe.bucket_pairs, the local path a whole band at once with
  clean._band_pairs: the same pairs. By hand: the bucket's first WINDOW and the WINDOW before."""
  w = dedupe.WINDOW
  assert ({a for a, b in dedupe.bucket_pairs(range(3 * w)) if b == 3 * w - 1}
          == set(range(w)) | set(range(2 * w - 1, 3 * w - 1)))
  rng = np.random.default_rng(0)
  for _ in range(100):
    n = int(rng.integers(1, 60))
    idx = np.sort(rng.choice(1000, n, replace=False))
    vals = rng.integers(0, int(rng.integers(1, 8)), n).astype(np.uint64)
    want = {p for v in set(vals.tolist()) for p in dedupe.bucket_pairs(idx[vals == v].tolist())}
    assert {tuple(p) for p in clean._band_pairs(vals, idx).tolist()} == want


def test_keep_first_never_removes_through_a_removed_document():
  """1 goes to 0 and 3 to 2; 2 and 4 stay though near the removed 1 (connected components would
  keep 0 alone). Only pairs whose earlier member is kept are asked about, in key order."""
  near, asked = {(0, 1), (1, 2), (2, 3), (1, 4)}, []

  def is_near(a, b):
    asked.append((a, b))
    return (a, b) in near

  pairs = sorted([(0, 1), (1, 2), (0, 2), (2, 3), (0, 4), (1, 4), (3, 4)], key=lambda p: p[::-1])
  assert dedupe.keep_first(pairs, is_near) == {1: 0, 3: 2}
  assert asked == [(0, 1), (0, 2), (2, 3), (0, 4)]


def test_a_chain_of_near_copies_keeps_its_ends():
  """A ~ B ~ C ~ D ~ E, each sharing 70 of its 100 words with the next, A unlike C: the engine
  keeps A, C and E (B goes to A, D to C), where connected components kept A alone."""
  w = _random_words(np.random.default_rng(0), 220)
  docs = [" ".join(w[i:i + 100]) for i in range(0, 121, 30)]
  assert all(_jaccard(a, b) >= 0.5 for a, b in zip(docs, docs[1:]))
  assert all(_jaccard(a, b) < 0.5 for a, b in zip(docs, docs[2:]))
  with clean.clean_stream(enumerate(docs), "dedupe_near(0.5)", workers=1) as r:
    assert [k for k, _ in r] == [0, 2, 4]
    assert sorted(r.duplicates()) == [(1, 0, "near"), (3, 2, "near")]
    assert r.report["stages"][0]["clusters"] == 2


def test_planted_pairs_recovered_and_every_removal_has_a_kept_near_copy():
  """chained_corpus: each planted copy goes and its source stays (a chain's tail too, which
  components removed with the whole chain, losing both members of its pair); every removed
  document's kept document is a near copy by Python sets; no two kept ones are."""
  docs, planted, chains = chained_corpus()
  with clean.clean_stream(enumerate(docs), "dedupe_exact|dedupe_near(0.5)", workers=1) as r:
    kept = {k for k, _ in r}
    dups = list(r.duplicates())
  assert len(dups) == len(docs) - len(kept)
  for k, rep, _ in dups:
    assert rep in kept and _jaccard(docs[k], docs[rep]) >= 0.5
  assert all(q in kept and r not in kept and s in kept for q, r, s in chains)
  eligible = [(s, c) for s, c in planted if _jaccard(docs[s], docs[c]) >= 0.5]
  assert len(eligible) >= 75
  assert [(s in kept, c in kept) for s, c in eligible] == [(True, False)] * len(eligible)
  groups = [chain + (c,) for chain, (_, c) in zip(chains, planted)] + planted[len(chains):]
  for g in groups:
    assert all(_jaccard(docs[a], docs[b]) < 0.5
               for a, b in itertools.combinations([i for i in g if i in kept], 2))


def test_verification_removes_only_true_near_copies(data_dir):
  """Pairs straddling the threshold: LSH proposes many below it; exact Jaccard decides. Without
  verification some of them go, with it none does, and every copy above it goes."""
  rng = np.random.default_rng(0)
  bases = _shakespeare_blocks(data_dir, 300, words=120)
  docs, truth = list(bases), []
  for i, base in enumerate(bases):
    copy = _variants(base.split(), rng, int(rng.integers(5, 14)))  # Jaccard ~0.35-0.7
    docs.append(copy)
    truth.append(_jaccard(base, copy))
  truth = np.asarray(truth)
  assert (truth < 0.5).sum() >= 20 and (truth >= 0.5).sum() >= 100
  with clean.clean_stream(enumerate(docs), "dedupe_near(0.5)", workers=1) as r:
    removed = {k for k, _, _ in r.duplicates()}
    stage = r.report["stages"][0]
  assert removed == {300 + i for i in np.flatnonzero(truth >= 0.5)}  # recall 1, no false removal
  assert stage["rejected_by_exact_jaccard"] >= 20
  _, loose = clean.run(docs, "dedupe_near(0.5, verify=False)")
  assert loose["stages"][0]["removed"] > stage["removed"]  # LSH alone removes non-copies


def test_same_documents_kept_on_any_number_of_workers(data_dir, monkeypatch):
  """Worker processes (spawned) and small batches change nothing: the kept set, the report and
  each group's survivor (its earliest document) are the same."""
  rng = np.random.default_rng(2)
  bases = _shakespeare_blocks(data_dir, 400, words=60)
  src = rng.choice(400, 80, replace=False)
  where = np.concatenate([np.arange(400), src + 0.5 + rng.random(80) * (399.5 - src)])
  pool = bases + [_variants(bases[i].split(), rng, 2) for i in src]
  docs = [pool[j] for j in np.argsort(where)]
  docs += [bases[3], bases[3] + " "]
  spec = "whitespace|min_length(10, unit='words')|dedupe_exact|dedupe_near(0.6)"
  runs = []
  for workers, batch in ((1, clean.BATCH_CHARS), (2, 5000)):
    monkeypatch.setattr(clean, "BATCH_CHARS", batch)
    with clean.clean_stream(((10 * i + 7, d) for i, d in enumerate(docs)), spec,
                            workers=workers) as r:
      report = dict(r.report)
      report.pop("seconds"), report.pop("phase_seconds")
      report["stages"][-1].pop("pairs_checked")
      runs.append(([k for k, _ in r], sorted(r.duplicates()), report))
  assert runs[0] == runs[1]
  kept, dups, report = runs[0]
  assert len(kept) == 400 and report["stages"][-2]["removed"] == 2
  assert all(rep < k for k, rep, _ in dups)  # the earliest of each group is the one kept
  assert {(k - 7) // 10 for k in kept} == {docs.index(b) for b in bases}


def test_minhash_is_exact_and_unbiased():
  """Signatures equal arbitrary-precision arithmetic of (a*x + b) mod 2^64 (nothing lost to
  overflow), and estimate Jaccard without bias."""
  rng = np.random.default_rng(0)
  mh = dedupe.MinHasher(64, seed=3)
  x = np.unique(rng.integers(0, 2**64, 300, dtype=np.uint64, endpoint=False))
  want = [min((int(a) * int(v) + int(b)) % 2**64 for v in x) for a, b in zip(mh.a, mh.b)]
  assert mh.signatures([x])[0].tolist() == want
  mh = dedupe.MinHasher(128)
  errors = []
  for _ in range(100):
    u = np.unique(rng.integers(0, 2**64, 600, dtype=np.uint64, endpoint=False))
    k = int(rng.integers(100, 500))
    a, b = np.sort(u[:k + 50]), np.sort(u[k - 50 if k > 50 else 0:])
    sig = mh.signatures([a, b])
    errors.append((sig[0] == sig[1]).mean() - dedupe.jaccard(a, b))
  assert abs(np.mean(errors)) < 0.01 and np.sqrt(np.mean(np.square(errors))) < 0.06
  # The most rows per band that still propose a pair at J = 0.5 with probability >= 0.99, by
  # hand: 3 rows x 42 bands give 1 - (7/8)^42 = 0.9963; 4 rows x 32 bands give 1 - (15/16)^32
  # = 0.874.
  bands, rows = dedupe.lsh_params(0.5, 128)
  assert (bands, rows) == (128 // 3, 3)
  assert 1 - (1 - 0.5**3) ** 42 >= 0.99 > 1 - (1 - 0.5**4) ** 32


def test_order_of_ops_is_checked():
  with pytest.raises(ConfigError, match="comes after a de-duplication step.*move dedupe"):
    clean.parse("dedupe_exact|nfkc")
  with pytest.raises(ConfigError, match="before dedupe_near"):
    clean.parse("dedupe_near|dedupe_exact")
  with pytest.raises(ConfigError, match="num_perm=8 is out of range"):
    clean.parse("dedupe_near(num_perm=8)")
  with pytest.raises(ConfigError, match="unit 'lines'"):
    clean.parse("dedupe_near(unit='lines')")


@pytest.mark.parametrize("op_name, cases", [
    ("gopher_quality", "GOPHER_QUALITY_CASES"),
    ("gopher_repetition", "GOPHER_REPETITION_CASES"),
    ("fineweb_quality", "FINEWEB_CASES")])
def test_quality_report_counts_every_rule(op_name, cases):
  """Through the engine: each rule's hand-made document is dropped under its own reason, the
  clean paragraph is kept, and the report and its log lines list every rule."""
  tq = test_data_quality
  rules = getattr(tq, cases)
  docs = [tq.CLEAN] + [doc for _, doc in rules] + [tq.CLEAN + " Once more."]
  kept, report = clean.run(docs, op_name)
  assert kept == [tq.CLEAN, tq.CLEAN + " Once more."]
  reasons = {}
  for reason, _ in rules:
    reasons[reason] = reasons.get(reason, 0) + 1
  assert report["stages"][0]["reasons"] == reasons
  assert report["stages"][0]["removed"] == len(rules)
  text = clean.describe(report)
  assert all(r in text for r in reasons)


def test_c4_and_pii_through_the_engine():
  tq = test_data_quality
  docs = [tq.CLEAN, tq.BODY + "\nLorem ipsum dolor sit amet, consectetur.",
          tq.BODY + "\nThe set {1, 2, 3} has three members.", "One sentence. Two.\nThree. Four.",
          "Home | About\n" + tq.BODY]
  kept, report = clean.run(docs, "c4_quality")
  assert kept == [tq.BODY, tq.BODY]  # line rules rewrote two documents, page rules dropped three
  assert report["stages"][0]["reasons"] == {"lorem_ipsum": 1, "curly_bracket": 1,
                                            "too_few_sentences": 1}
  assert report["stages"][0]["changed"] == 2
  mail = "Mail jo@example.com or call +1 (415) 555-2671 from 203.0.113.9 in 2021."
  kept, report = clean.run([mail, tq.CLEAN], "pii")
  assert kept == ["Mail <EMAIL> or call <PHONE> from <IP> in 2021.", tq.CLEAN]
  assert report["stages"][0]["changed"] == 1


def test_streamed_files_bad_utf8_and_chunk_boundaries(tmp_path, monkeypatch):
  """A delimited file read in small pieces gives the same documents as read whole, multi-byte
  characters cut across reads included; invalid bytes are named, counted or skipped."""
  docs = [f"caf\u00e9 \u4e16\u754c {i} \U0001f600" * (i % 5 + 1) for i in range(50)]
  (tmp_path / "a.txt").write_text("\n##\n".join(docs))
  bad = tmp_path / "b.txt"
  bad.write_bytes(b"fine one\n##\nbroken \xe9\xff here\n##\nfine two")
  opts = text_files.TextOptions(delimiter="\n##\n")
  monkeypatch.setattr(text_files, "READ_BYTES", 7)
  stats = {}
  got = list(text_files.iter_file(str(tmp_path / "a.txt"), 3, opts, stats))
  assert [t for _, t in got] == docs and got[1][0] == (3 << 32) | 1 and not stats
  with pytest.raises(ConfigError, match=r"b.txt is not valid UTF-8 \(byte 19: b'\\xe9\\xff'\)"):
    list(text_files.iter_file(str(bad), 0, opts, {}))
  for mode, want, counted in (("replace", "broken \ufffd\ufffd here", ("invalid_utf8_replaced", 2)),
                              ("skip", None, ("invalid_utf8_documents_skipped", 1))):
    stats = {}
    out = list(text_files.iter_file(str(bad), 0, text_files.TextOptions(
        delimiter="\n##\n", bad_utf8=mode), stats))
    assert [t for _, t in out] == ["fine one"] + ([want] if want else []) + ["fine two"]
    assert out[-1][0] == 2  # keys count every document, skipped or not
    assert stats == dict([counted])


def test_bad_input_named_at_config_time(tmp_path):
  c = config_lib.get_config().data
  c.update(dict(name="text_files/anything", data_dir=str(tmp_path)))
  for spec, match in (("gopher_qualty", "Unknown cleaning op 'gopher_qualty'"),
                      ("fineweb_quality(line_punct_thr=1.5)", "line_punct_thr=1.5 is out of range"),
                      ("dedupe_near(threshold=0)", "threshold=0 is out of range")):
    c.text.clean = spec
    with pytest.raises(ConfigError, match=match):
      sources.get_builder(c)  # before the (missing) folder is looked at
  c.text.update(clean="", bad_utf8="ignore")
  with pytest.raises(ConfigError, match="bad_utf8='ignore'; valid: error, replace, skip"):
    sources.get_builder(c)
