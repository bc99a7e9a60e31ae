"""Build-time document cleaning at corpus scale: `"op|op(args)|dedupe_exact|dedupe_near"`.

Per-document ops (aigc_jax/data/docops.py, quality.py) rewrite a document or drop it with a
reason; they come first. The corpus-wide steps, `dedupe_exact` then `dedupe_near`, come last:
the earliest document (by its stable key) of exact copies is kept, and a document goes as a near
copy only of a document that is kept.

The engine streams: documents arrive as `(key, text)` with increasing integer keys, are cleaned
in batches by worker processes, and what survives the per-document ops is written to a spill file.
Memory holds per document only its key, spill offset, a 16-byte content digest and its LSH band
keys (`dedupe.py`; 8 bytes a band, 42 bands by default): a few hundred bytes, never the text.
After the stream, exact copies are found by sorting digests, near copies by sorting band keys:
in key order, a document is removed when a kept candidate is confirmed a near copy by the exact
Jaccard similarity of the two documents' shingle sets (read back from the spill). Kept documents
are read back in key order. `BeamCorpus` runs the same steps on Apache Beam with the same
functions, so both paths keep the same documents on any number of workers.
"""

import collections
import concurrent.futures
import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
import tempfile
import time
import weakref
from typing import Iterable, Iterator, Optional

import numpy as np

from aigc_jax.data import dedupe, docops
from aigc_jax.data import quality  # noqa: F401  pylint: disable=unused-import  (registers ops)
from aigc_jax.registry import parse_calls
from aigc_jax.errors import ConfigError

BATCH_CHARS = 1 << 21  # characters per worker batch: big enough to amortise the hand-off


@dataclasses.dataclass(frozen=True)
class ExactConfig:
  """dedupe_exact: documents with the same text (SHA-256) after the per-document ops."""


@dataclasses.dataclass(frozen=True)
class NearConfig:
  threshold: float = 0.5
  num_perm: int = 128
  ngram: int = 5
  unit: str = "words"
  seed: int = 1
  bands: int = 0  # 0: chosen from threshold and num_perm for recall (dedupe.lsh_params)
  verify: bool = True

  @property
  def layout(self) -> tuple[int, int]:
    if self.bands:
      return self.bands, self.num_perm // self.bands
    return dedupe.lsh_params(self.threshold, self.num_perm)


def dedupe_exact():
  """Keeps the earliest of documents with the same text (run after normalising ops)."""
  return ExactConfig()


def dedupe_near(threshold: float = 0.5, num_perm: int = 128, ngram: int = 5, unit: str = "words",
                seed: int = 1, bands: int = 0, verify: bool = True):
  """Drops a document whose n-gram shingle set has exact Jaccard similarity >= threshold with a
  kept document's: in key order, each is kept unless a kept one is its near copy, so no chain of
  copies removes a document unlike every kept one. MinHash LSH proposes the pairs;
  `verify=False` accepts LSH's candidates unchecked (faster, may remove non-copies)."""
  docops.check_range("dedupe_near", "threshold", threshold, lo=0.0, hi=1.0, lo_open=True,
                     hi_open=True)
  docops.check_range("dedupe_near", "num_perm", num_perm, lo=16, hi=1024)
  docops.check_range("dedupe_near", "ngram", ngram, lo=1, hi=64)
  if unit not in ("words", "chars"):
    raise ConfigError(f"dedupe_near unit {unit!r} is not 'words' or 'chars'.")
  if bands:
    docops.check_range("dedupe_near", "bands", bands, lo=1, hi=num_perm)
  return NearConfig(float(threshold), int(num_perm), int(ngram), unit, int(seed), int(bands),
                    bool(verify))


CORPUS_OPS = {"dedupe_exact": dedupe_exact, "dedupe_near": dedupe_near}


@dataclasses.dataclass
class Plan:
  spec: str
  doc_ops: list  # [(text, DocOp)]
  exact: Optional[ExactConfig] = None
  exact_text: str = ""
  near: Optional[NearConfig] = None
  near_text: str = ""


def parse(spec: str) -> Plan:
  """"nfkc|gopher_quality|dedupe_near(0.8)" -> a Plan; unknown ops, bad arguments and a
  per-document op after a corpus-wide step raise ConfigError, before any file is read."""
  plan = Plan(spec, [])
  for text, obj in parse_calls(spec, {**docops.OPS, **CORPUS_OPS}, "cleaning op"):
    if isinstance(obj, docops.DocOp):
      if plan.exact or plan.near:
        raise ConfigError(f"Cleaning op {text!r} comes after a de-duplication step in {spec!r}; "
                          "per-document ops run first: move dedupe_exact/dedupe_near to the end.")
      plan.doc_ops.append((text, obj))
    elif isinstance(obj, ExactConfig):
      if plan.exact or plan.near:
        raise ConfigError(f"{text!r} must come once, before dedupe_near, in {spec!r}.")
      plan.exact, plan.exact_text = obj, text
    else:
      if plan.near:
        raise ConfigError(f"{text!r} appears twice in {spec!r}.")
      plan.near, plan.near_text = obj, text
  return plan


_PLANS: dict[str, Plan] = {}


def _plan(spec: str) -> Plan:
  """Parsed once per process (worker processes parse their own: ops hold closures)."""
  if spec not in _PLANS:
    _PLANS[spec] = parse(spec)
  return _PLANS[spec]


def digest(data: bytes) -> tuple[int, int]:
  d = hashlib.sha256(data).digest()
  return int.from_bytes(d[:8], "little"), int.from_bytes(d[8:16], "little")


def process_batch(spec: str, batch: list) -> dict:
  """Per-document work for a batch of (key, text): the ops, then the digest and LSH band keys
  of each survivor. Runs in worker processes and in Beam workers alike."""
  plan = _plan(spec)
  n_ops = len(plan.doc_ops)
  changed = [0] * n_ops
  reasons = [collections.Counter() for _ in range(n_ops)]
  keys, texts, blobs, words = [], [], [], []
  chars_in = 0
  for key, text in batch:
    chars_in += len(text)
    for i, (_, o) in enumerate(plan.doc_ops):
      if o.kind == "map":
        new, reason = o.fn(text), None
      elif o.kind == "filter":
        new, reason = text, o.fn(text)
      else:  # map_filter: rewrites and may drop (C4's line and page rules)
        new, reason = o.fn(text)
      if reason is not None:
        reasons[i][reason] += 1
        break
      if new != text:
        changed[i] += 1
        text = new
    else:
      keys.append(key)
      texts.append(text)
      blobs.append(text.encode("utf-8"))
      words.append(len(text.split()))
  out = {"keys": np.asarray(keys, np.int64), "lens": np.asarray([len(b) for b in blobs], np.int64),
         "blob": b"".join(blobs), "words": np.asarray(words, np.int64), "docs_in": len(batch),
         "chars_in": chars_in, "changed": changed, "reasons": reasons}
  if plan.exact:
    out["digests"] = np.asarray([digest(b) for b in blobs], np.uint64).reshape(-1, 2)
  if plan.near:
    nc = plan.near
    sets = [dedupe.shingle_set(t, nc.ngram, nc.unit) for t in texts]
    sig = dedupe.MinHasher(nc.num_perm, nc.seed).signatures(sets)
    out["bands"] = dedupe.band_keys(sig, *nc.layout)
    out["has_shingles"] = np.asarray([len(s) > 0 for s in sets], bool)
  return out


def _run_batch(args):
  return process_batch(*args)


def _batches(docs: Iterable[tuple[int, str]]) -> Iterator[list]:
  batch, size, last = [], 0, None
  for key, text in docs:
    if last is not None and key <= last:
      raise ValueError(f"Document keys must increase: {key} after {last}.")
    last = key
    batch.append((key, text))
    size += len(text) + 64
    if size >= BATCH_CHARS:
      yield batch
      batch, size = [], 0
  if batch:
    yield batch


class _Pool:
  """Worker processes, started on first use. spawn, not fork: the parent may hold JAX's
  threads, which a fork would copy half-initialised."""

  def __init__(self, workers: int):
    self.workers, self._pool = workers, None

  def get(self) -> concurrent.futures.ProcessPoolExecutor:
    if self._pool is None:
      self._pool = concurrent.futures.ProcessPoolExecutor(
          self.workers, mp_context=multiprocessing.get_context("spawn"))
    return self._pool

  def close(self):
    if self._pool is not None:
      self._pool.shutdown(cancel_futures=True)


def _map_batches(spec: str, batches: Iterator[list], pool: _Pool) -> Iterator[dict]:
  """process_batch over the batches in order, on the pool once there is more than one batch; at
  most 2 batches per worker in flight, so reading never runs ahead of cleaning."""
  first = next(batches, None)
  if first is None:
    return
  second = next(batches, None)
  if second is None or pool.workers <= 1:
    yield process_batch(spec, first)
    if second is not None:
      yield process_batch(spec, second)
      for b in batches:
        yield process_batch(spec, b)
    return
  ex = pool.get()
  pending = collections.deque(ex.submit(_run_batch, (spec, b)) for b in (first, second))
  for b in batches:
    pending.append(ex.submit(_run_batch, (spec, b)))
    while len(pending) > 2 * pool.workers:
      yield pending.popleft().result()
  while pending:
    yield pending.popleft().result()


class _Shingles:
  """Shingle sets of spilled documents, read with pread (mapped pages would count towards the
  RSS) and kept for the most recent few thousand."""

  def __init__(self, path: str, ngram: int, unit: str, size: int = 4096):
    self.fd, self.ngram, self.unit, self.size = os.open(path, os.O_RDONLY), ngram, unit, size
    self.cache = collections.OrderedDict()

  def __call__(self, offset: int, length: int) -> np.ndarray:
    if offset in self.cache:
      self.cache.move_to_end(offset)
    else:
      text = os.pread(self.fd, length, offset).decode("utf-8")
      self.cache[offset] = dedupe.shingle_set(text, self.ngram, self.unit)
      if len(self.cache) > self.size:
        self.cache.popitem(last=False)
    return self.cache[offset]

  def close(self):
    os.close(self.fd)


def _jaccards(args) -> list[float]:
  """Exact Jaccard of spilled document pairs, [(offset a, length a, offset b, length b)]."""
  path, ngram, unit, items = args
  sh = _Shingles(path, ngram, unit)
  try:
    return [dedupe.jaccard(sh(oa, la), sh(ob, lb)) for oa, la, ob, lb in items]
  finally:
    sh.close()


class Result:
  """The kept documents, read back from the spill file in key order, and the clean report."""

  def __init__(self, tmp: str, keys, offsets, rep, kind, report):
    self._tmp, self.keys, self._offsets = tmp, keys, offsets
    self._rep, self._kind = rep, kind
    self.alive = rep < 0
    self.report = report
    # The spill goes when the result does (tfds drops its split generators when done with them).
    self._finalizer = weakref.finalize(self, shutil.rmtree, tmp, True)

  def __len__(self):
    return int(self.alive.sum())

  def __iter__(self) -> Iterator[tuple[int, str]]:
    with open(os.path.join(self._tmp, "spill"), "rb") as f:
      for i in np.flatnonzero(self.alive):
        f.seek(self._offsets[i])
        yield int(self.keys[i]), f.read(self._offsets[i + 1] - self._offsets[i]).decode("utf-8")

  def duplicates(self) -> Iterator[tuple[int, int, str]]:
    """(removed key, key of the kept document of its group, "exact" or "near")."""
    for i in np.flatnonzero(~self.alive):
      yield int(self.keys[i]), int(self.keys[self._rep[i]]), ("exact", "near")[self._kind[i] - 1]

  def close(self):
    self._finalizer()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def _new_report(plan: Plan) -> dict:
  return {"pipeline": plan.spec, "documents_in": 0, "characters_in": 0,
          "stages": [{"op": t, "documents_in": 0, "changed" if o.kind == "map" else "removed": 0}
                     | ({"changed": 0, "reasons": {}} if o.kind == "map_filter" else
                        {"reasons": {}} if o.kind == "filter" else {})
                     for t, o in plan.doc_ops]}


def _count(report: dict, out: dict) -> None:
  report["documents_in"] += out["docs_in"]
  report["characters_in"] += out["chars_in"]
  n = out["docs_in"]
  for stage, changed, reasons in zip(report["stages"], out["changed"], out["reasons"]):
    stage["documents_in"] += n
    if "changed" in stage:
      stage["changed"] += changed
    if "reasons" in stage:
      for r, c in reasons.items():
        stage["reasons"][r] = stage["reasons"].get(r, 0) + c
        stage["removed"] += c
        n -= c


def _band_pairs(vals: np.ndarray, idx: np.ndarray) -> np.ndarray:
  """(m, 2) candidate pairs of one band, documents `idx` (increasing) with band keys `vals`: in
  each bucket, each member with the first and the preceding dedupe.WINDOW members (bucket_pairs);
  a pair may repeat."""
  order = np.lexsort((idx, vals))
  sv, si = vals[order], idx[order]
  same = np.zeros(len(sv), bool)
  same[1:] = sv[1:] == sv[:-1]
  pos = np.flatnonzero(same)
  first = np.maximum.accumulate(np.where(same, 0, np.arange(len(sv))))[pos]
  rank = pos - first  # in its bucket, >= 1
  out = [np.zeros((0, 2), np.int64)]
  for d in range(dedupe.WINDOW):
    at = pos[rank > d]  # members with a (d+1)-th predecessor, and the bucket a (d+1)-th member
    out.append(np.stack([si[at - d - 1], si[at]], 1))
    out.append(np.stack([si[first[rank > d] + d], si[at]], 1))
  return np.concatenate(out)


def candidate_pairs(bands: np.ndarray, idx: np.ndarray, n: int) -> Iterator[tuple[int, int]]:
  """Distinct candidate pairs (a, b), a < b, of documents `idx` (increasing, all < n) with band
  keys `bands` (one row each), in (b, a) order: what dedupe.keep_first reads."""
  codes = [np.zeros(0, np.int64)]
  for j in range(bands.shape[1]):
    pairs = _band_pairs(bands[:, j], idx)
    codes.append(np.unique(pairs[:, 1] * n + pairs[:, 0]))
  codes = np.unique(np.concatenate(codes))
  for i in range(0, len(codes), 1 << 16):  # as Python ints a few at a time
    c = codes[i:i + (1 << 16)]
    yield from zip((c % n).tolist(), (c // n).tolist())


def find_duplicates(plan: Plan, digests, bands, has_shingles, similarities,
                    report: dict) -> tuple[np.ndarray, np.ndarray]:
  """For the survivors of the per-document ops, in key order: (representative index, or -1 for
  a kept document; kind, 1 exact or 2 near). Exact copies first (sorted digests), then near
  copies among the rest: in index order, a document goes only as a verified near copy of a kept
  candidate (dedupe.keep_first), so every removal has a kept near copy. `similarities([(i, j)])`
  gives exact Jaccard; it is asked only about pairs whose earlier member is kept."""
  n = len(has_shingles)
  rep = np.full(n, -1, np.int64)
  kind = np.zeros(n, np.int8)
  if plan.exact:
    order = np.lexsort((np.arange(n), digests[:, 1], digests[:, 0]))
    d = digests[order]
    same = np.zeros(n, bool)
    same[1:] = (d[1:] == d[:-1]).all(axis=1)
    first = np.maximum.accumulate(np.where(same, 0, np.arange(n)))
    rep[order[same]] = order[first[same]]  # each copy -> the first (smallest index) of its run
    kind[order[same]] = 1
    report["stages"].append({"op": plan.exact_text, "documents_in": n,
                             "removed": int(same.sum())})
  if plan.near:
    nc = plan.near
    n_bands, rows = nc.layout
    near_in = int((rep < 0).sum())
    live = np.flatnonzero((rep < 0) & has_shingles)
    pairs = candidate_pairs(bands[live], live, n)
    checked = rejected = 0

    def near(a, b):
      nonlocal checked, rejected
      checked += 1
      if nc.verify and similarities([(a, b)])[0] < nc.threshold:
        rejected += 1
        return False
      return True

    removed = dedupe.keep_first(pairs, near)
    members = np.fromiter(removed, np.int64, len(removed))
    kept_as = np.arange(n)
    kept_as[members] = np.fromiter(removed.values(), np.int64, len(removed))
    rep[members], kind[members] = kept_as[members], 2
    exact = kind == 1
    rep[exact] = kept_as[rep[exact]]  # copies of a document that went as a near copy follow it
    report["stages"].append({
        "op": plan.near_text, "documents_in": near_in, "removed": len(members),
        "clusters": len(np.unique(kept_as[members])), "bands": n_bands, "rows": rows,
        "verified": nc.verify, "pairs_checked": checked, "rejected_by_exact_jaccard": rejected})
  return rep, kind


def clean_stream(docs: Iterable[tuple[int, str]], spec: str, workers: Optional[int] = None,
                 tmp_dir: Optional[str] = None, progress: Optional[str] = None) -> Result:
  """Cleans a stream of (key, text) with increasing integer keys. `workers`: processes for the
  per-document work (default: one per core, started only for corpora of more than one batch).
  `progress`: a label to print progress under every 10 seconds. The caller closes the Result."""
  plan = _plan(spec)
  workers = (os.cpu_count() or 1) if workers is None else workers
  tmp = tempfile.mkdtemp(prefix="aigc_clean_", dir=tmp_dir)
  pool = _Pool(workers)
  report = _new_report(plan)
  keys, lens, digests, bands, has, words = [], [], [], [], [], []
  t0 = last = time.time()
  try:
    with open(os.path.join(tmp, "spill"), "wb") as spill:
      for out in _map_batches(spec, _batches(docs), pool):
        _count(report, out)
        spill.write(out["blob"])
        keys.append(out["keys"])
        lens.append(out["lens"])
        words.append(out["words"])
        if plan.exact:
          digests.append(out["digests"])
        if plan.near:
          bands.append(out["bands"])
          has.append(out["has_shingles"])
        if progress and time.time() - last > 10:
          last = time.time()
          mb = report["characters_in"] / 1e6
          print(f"{progress}: cleaned {report['documents_in']:,} documents, {mb:,.0f} M chars "
                f"({mb / (last - t0):.1f} M chars/s)", flush=True)
    t1 = time.time()
    keys = np.concatenate(keys) if keys else np.zeros(0, np.int64)
    lens = np.concatenate(lens) if lens else np.zeros(0, np.int64)
    words = np.concatenate(words) if words else np.zeros(0, np.int64)
    offsets = np.concatenate([[0], np.cumsum(lens)])
    n_bands = plan.near.layout[0] if plan.near else 0
    digests = np.concatenate(digests) if digests else np.zeros((len(keys), 2), np.uint64)
    bands = np.concatenate(bands) if bands else np.zeros((len(keys), n_bands), np.uint64)
    has = np.concatenate(has) if has else np.zeros(len(keys), bool)
    spill = os.path.join(tmp, "spill")
    nc = plan.near or NearConfig()

    local = []  # one shingle cache across bands for the pairs checked here

    def similarities(pairs):
      items = [(int(offsets[a]), int(lens[a]), int(offsets[b]), int(lens[b])) for a, b in pairs]
      if pool.workers <= 1 or len(items) < 20000:  # below this, a cold cache per job costs more
        if not local:
          local.append(_Shingles(spill, nc.ngram, nc.unit))
        sh = local[0]
        return [dedupe.jaccard(sh(oa, la), sh(ob, lb)) for oa, la, ob, lb in items]
      step = -(-len(items) // (4 * pool.workers))
      jobs = [pool.get().submit(_jaccards, (spill, nc.ngram, nc.unit, items[i:i + step]))
              for i in range(0, len(items), step)]
      return [x for j in jobs for x in j.result()]

    rep, kind = find_duplicates(plan, digests, bands, has, similarities, report)
    for sh in local:
      sh.close()
    alive = rep < 0
    report.update(documents_out=int(alive.sum()), bytes_out=int(lens[alive].sum()),
                  words_out=int(words[alive].sum()), seconds=round(time.time() - t0, 2),
                  phase_seconds={"per_document": round(t1 - t0, 2),
                                 "duplicates": round(time.time() - t1, 2)})
    return Result(tmp, keys, offsets, rep, kind, report)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  finally:
    pool.close()


def run(docs: list[str], spec: str, workers: int = 1) -> tuple[list[str], dict]:
  """A list in, the kept list and the report out (small corpora, tests)."""
  with clean_stream(enumerate(docs), spec, workers=workers) as result:
    return [t for _, t in result], result.report


def describe(report: dict) -> str:
  """One line per stage (and per drop reason), for logs."""
  lines = [f"cleaning {report['documents_in']} documents: {report['pipeline']}"]
  for s in report["stages"]:
    what = [f"removed {s['removed']}"] if "removed" in s else []
    what += [f"changed {s['changed']}"] if "changed" in s else []
    lines.append(f"  {s['op']:<40} {', '.join(what)}")
    for r, c in sorted(s.get("reasons", {}).items(), key=lambda rc: -rc[1]):
      lines.append(f"    {r:<38} {c}")
  lines.append(f"  -> {report['documents_out']} documents, {report['bytes_out']} bytes, "
               f"{report['words_out']} words")
  return "\n".join(lines)


def _rank_keys(keys: np.ndarray, seed: int) -> np.ndarray:
  """A seeded pseudo-random uint64 per key, the same wherever it is computed."""
  return dedupe.mix(keys.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15))


def split_cuts(keys: np.ndarray, seed: int, fractions) -> list[tuple[int, int]]:
  """(rank, key) of the first document of each split after the first: the documents ordered by
  their seeded rank (ties by key), the first fractions[0] of them in split 0, the next
  fractions[1] in split 1, and so on, the rest in the last split; none left empty. A function of
  the kept keys only, so the local path and Beam split alike, whatever the number of workers."""
  n = len(keys)
  if n < len(fractions) + 1:
    raise ConfigError(f"{n} document(s) left after cleaning; a documents split into "
                      f"{len(fractions) + 1} parts needs as many or more. Add documents or relax "
                      "data.text.clean.")
  ranks = _rank_keys(np.asarray(keys, np.int64), seed)
  order = np.lexsort((keys, ranks))
  cuts, total, at = [], 0.0, 0
  for i, f in enumerate(fractions):
    total += f
    # each split before keeps one document at least, and leaves one for each split after
    at = min(max(int(n * total), at + 1), n - (len(fractions) - i))
    cuts.append((int(ranks[order[at]]), int(keys[order[at]])))
  return cuts


def split_index(keys: np.ndarray, seed: int, cuts) -> np.ndarray:
  """Each document's split: how many of `cuts` ((rank, key), from split_cuts) it is at or above."""
  keys = np.asarray(keys, np.int64)
  ranks = _rank_keys(keys, seed)
  out = np.zeros(len(keys), np.int64)
  for r0, k0 in cuts:
    out += (ranks > np.uint64(r0)) | ((ranks == np.uint64(r0)) & (keys >= k0))
  return out


# ---- Apache Beam: the same steps as a Beam graph -------------------------------------------------


def _merge_counts(parts) -> dict:
  out = {"docs_in": 0, "chars_in": 0, "changed": None, "reasons": None}
  for p in parts:
    out["docs_in"] += p["docs_in"]
    out["chars_in"] += p["chars_in"]
    if out["changed"] is None:
      out["changed"] = list(p["changed"])
      out["reasons"] = [collections.Counter(r) for r in p["reasons"]]
    else:
      out["changed"] = [a + b for a, b in zip(out["changed"], p["changed"])]
      for acc, r in zip(out["reasons"], p["reasons"]):
        acc.update(r)
  return out


def _beam_records(batch, spec):
  import apache_beam as beam  # pylint: disable=import-outside-toplevel
  out = process_batch(spec, batch)
  offsets = np.concatenate([[0], np.cumsum(out["lens"])])
  for i, key in enumerate(out["keys"].tolist()):
    yield key, out["blob"][offsets[i]:offsets[i + 1]].decode("utf-8")
    if "digests" in out:
      # int64 views: Beam's integer coder is signed 64-bit.
      yield beam.pvalue.TaggedOutput("digests",
                                     (tuple(out["digests"][i].view(np.int64).tolist()), key))
    if "bands" in out and out["has_shingles"][i]:
      yield beam.pvalue.TaggedOutput("bands", (key, out["bands"][i].view(np.int64)))
  yield beam.pvalue.TaggedOutput("counts", {k: out[k] for k in ("docs_in", "chars_in", "changed",
                                                                 "reasons")})


def _exact_group(item):
  keys = sorted(item[1])
  return [(k, (keys[0], "exact")) for k in keys[1:]]


def _band_entries(item, removed):
  key, bands = item
  if key in removed:
    return []
  return [((j, int(v)), key) for j, v in enumerate(bands.tolist())]


def _bucket(item):
  members = list(item[1])
  return dedupe.bucket_pairs(members) if len(members) > 1 else []


def _half_pairs(item, ngram, unit):
  """(a, {text: [text_a], pair: [b...]}) -> (b, (a, shingles of a)) for every b."""
  _, groups = item
  a = item[0]
  if not groups["pair"] or not groups["text"]:
    return []
  sa = dedupe.shingle_set(groups["text"][0], ngram, unit)
  return [(b, (a, sa)) for b in sorted(set(groups["pair"]))]


def _verify(item, ngram, unit, threshold):
  import apache_beam as beam  # pylint: disable=import-outside-toplevel
  b, groups = item
  if not groups["half"] or not groups["text"]:
    return
  sb = dedupe.shingle_set(groups["text"][0], ngram, unit)
  for a, sa in groups["half"]:
    if dedupe.jaccard(sa, sb) >= threshold:
      yield (a, b)
    else:
      yield beam.pvalue.TaggedOutput("rejected", (a, b))


def _keep_first(edges) -> list:
  """Verified edges -> (removed, kept) items by dedupe.keep_first, as the local path; sorted
  first, so it is the same however the workers delivered them."""
  edges = sorted({(int(a), int(b)) for a, b in edges}, key=lambda e: (e[1], e[0]))
  return sorted(dedupe.keep_first(edges, lambda a, b: True).items())


def _doc_stats(item):
  return (1, len(item[1].encode("utf-8")), len(item[1].split()))


def _sum_tuples(rows):
  return tuple(map(sum, zip(*rows))) if rows else (0, 0, 0)


def _write_report(_, path, plan, counts, read_stats, exact_removed, near, pairs, rejected, kept,
                  extra):
  report = _new_report(plan)
  _count(report, counts if counts["changed"] is not None else
         {"docs_in": 0, "chars_in": 0, "changed": [0] * len(plan.doc_ops),
          "reasons": [{}] * len(plan.doc_ops)})
  n = report["documents_in"] - sum(s.get("removed", 0) for s in report["stages"])
  if plan.exact:
    report["stages"].append({"op": plan.exact_text, "documents_in": n, "removed": exact_removed})
    n -= exact_removed
  if plan.near:
    bands, rows = plan.near.layout
    report["stages"].append({
        "op": plan.near_text, "documents_in": n, "removed": len(near),
        "clusters": len(set(near.values())), "bands": bands, "rows": rows,
        "verified": plan.near.verify, "pairs_checked": pairs,
        "rejected_by_exact_jaccard": rejected})
  report.update(documents_out=kept[0], bytes_out=kept[1], words_out=kept[2])
  report.update(read_stats)
  report.update(extra)
  # Here, not at the top: the spawned cleaning workers import this module, and writers would
  # bring jax into each of them.
  from aigc_jax import writers  # pylint: disable=import-outside-toplevel
  writers.atomic_write(path, json.dumps(report, indent=1))
  if kept[0] == 0:
    raise ConfigError(f"Cleaning {plan.spec!r} removed every document; relax data.text.clean.")


class BeamCorpus:
  """Reading, cleaning and de-duplication as one Beam graph, built once per pipeline and shared
  by the splits. `read(item)` turns one element of `items` into (key, text) documents and may
  emit TaggedOutput('stats', {name: count}) for the report."""

  def __init__(self, items, read, spec: str, seed: int, fractions, report_path: str,
               extra: dict):
    self.items, self.read, self.plan = items, read, parse(spec)
    self.seed, self.fractions = seed, tuple(fractions)  # as split_cuts takes them
    self.report_path, self.extra = report_path, extra
    self._built = {}

  def _build(self, pipeline):
    import apache_beam as beam  # pylint: disable=import-outside-toplevel
    plan, spec = self.plan, self.plan.spec
    p = pipeline | "CleanFiles" >> beam.Create(self.items)
    read = p | "CleanRead" >> beam.FlatMap(self.read).with_outputs("stats", main="docs")
    stats = (read.stats | "CleanReadStats" >> beam.CombineGlobally(_sum_dicts))
    rec = (read.docs
           | "CleanBatch" >> beam.BatchElements(min_batch_size=64, max_batch_size=2048)
           | "CleanDocs" >> beam.FlatMap(_beam_records, spec)
           .with_outputs("digests", "bands", "counts", main="docs"))
    docs = rec.docs
    counts = rec.counts | "CleanCounts" >> beam.CombineGlobally(_merge_counts)
    empty = pipeline | "CleanNone" >> beam.Create([])
    exact = empty
    if plan.exact:
      exact = (rec.digests | "ExactGroup" >> beam.GroupByKey()
               | "ExactCopies" >> beam.FlatMap(_exact_group))
    near, pairs_n, rejected_n = empty, 0, 0
    if plan.near:
      nc = plan.near
      pairs = (rec.bands
               | "NearBands" >> beam.FlatMap(_band_entries, beam.pvalue.AsDict(exact))
               | "NearBuckets" >> beam.GroupByKey()
               | "NearPairs" >> beam.FlatMap(_bucket)
               | "NearDistinct" >> beam.Distinct())
      pairs_n = beam.pvalue.AsSingleton(pairs | "NearPairCount" >> beam.combiners.Count.Globally())
      edges = pairs
      if nc.verify:
        halves = ({"text": docs, "pair": pairs}
                  | "VerifyJoinA" >> beam.CoGroupByKey()
                  | "VerifyShingleA" >> beam.FlatMap(_half_pairs, nc.ngram, nc.unit))
        checked = ({"text": docs, "half": halves}
                   | "VerifyJoinB" >> beam.CoGroupByKey()
                   | "VerifyJaccard" >> beam.FlatMap(_verify, nc.ngram, nc.unit, nc.threshold)
                   .with_outputs("rejected", main="edges"))
        edges = checked.edges
        rejected_n = beam.pvalue.AsSingleton(
            checked.rejected | "VerifyRejected" >> beam.combiners.Count.Globally())
      near = (edges | "NearEdges" >> beam.combiners.ToList()
              | "NearKeepFirst" >> beam.FlatMap(_keep_first))
    removed = (exact | "ExactKeys" >> beam.Map(lambda kv: (kv[0], kv[1][0])),
               near) | "Removed" >> beam.Flatten()
    kept = docs | "Keep" >> beam.Filter(lambda kv, gone: kv[0] not in gone,
                                        beam.pvalue.AsDict(removed))
    kept_stats = (kept | "KeptStats" >> beam.Map(_doc_stats)
                  | "KeptSum" >> beam.CombineGlobally(_sum_tuples))
    side = dict(counts=beam.pvalue.AsSingleton(counts), read_stats=beam.pvalue.AsSingleton(stats),
                exact_removed=beam.pvalue.AsSingleton(
                    exact | "ExactCount" >> beam.combiners.Count.Globally()),
                near=beam.pvalue.AsDict(near), kept=beam.pvalue.AsSingleton(kept_stats))
    if plan.near:
      side.update(pairs=pairs_n, rejected=rejected_n)
    (pipeline | "ReportSeed" >> beam.Create([None])
     | "Report" >> beam.Map(_write_report, self.report_path, plan,
                            **side, **({} if plan.near else {"pairs": 0, "rejected": 0}),
                            extra=self.extra))
    cuts = (kept | "KeptKeys" >> beam.Map(lambda kv: kv[0])
            | "AllKeys" >> beam.combiners.ToList()
            | "Cuts" >> beam.Map(lambda keys, s, f: split_cuts(
                np.asarray(sorted(keys), np.int64), s, f), self.seed, self.fractions))
    return kept, beam.pvalue.AsSingleton(cuts)

  def split(self, index: int):
    """A PTransform from the pipeline's root to split `index`'s (key, {"text": text}) examples
    (0: the first of split_cuts' parts)."""
    import apache_beam as beam  # pylint: disable=import-outside-toplevel
    corpus = self

    class _Split(beam.PTransform):
      def expand(self, pbegin):
        key = id(pbegin.pipeline)
        if key not in corpus._built:
          corpus._built[key] = corpus._build(pbegin.pipeline)
        kept, cuts = corpus._built[key]
        return (kept
                | f"Pick{index}" >> beam.Filter(
                    lambda kv, c: int(split_index([kv[0]], corpus.seed, c)[0]) == index, cuts)
                | f"Example{index}" >> beam.Map(lambda kv: (kv[0], {"text": kv[1]})))
    return _Split()


def _sum_dicts(parts) -> dict:
  out = collections.Counter()
  for p in parts:
    out.update(p)
  return dict(out)
