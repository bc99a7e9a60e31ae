"""Near-duplicate removal at scale: throughput, memory, recall and false removals.

  python -m benchmarks.clean_throughput [--mb=32 --engines=local,beam --workers=2]
  python -m benchmarks.clean_throughput --mb=1000 --engines=local --copies=0.5   # 1 GB

Builds a corpus from documentation text already on the machine (HTML pages, tags stripped, and
plain-text docs under --sources; never the project's test data), cut into passages of ~250 words.
Near copies are planted: a random passage with word edits at a rate drawn from [0, --max_edit]
(replace, delete or insert a word, equally likely) and a crop of up to 10% at either end, so their
exact 5-gram Jaccard similarity to the source spans both sides of the threshold. The corpus is
written as files of delimited passages; the cleaning runs in a fresh process that streams them, so
its peak RSS is the engine's, not the corpus's. Ground truth is computed here, independently of the
engine (Python sets of word 5-grams, no hashing):
- recall: planted copies with Jaccard >= threshold to their source that were removed;
- false removals: removed passages with no other member of their duplicate group at Jaccard >=
  threshold (a removal the verified engine should never make);
- plus MB/s, documents/s and peak RSS of the cleaning process and of its workers, next to the size
  of the corpus's MinHash signatures (documents x permutations x 8 bytes).
"""

import glob
import gzip
import html
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

_MB = flags.DEFINE_float("mb", 32, "Corpus size in MB (UTF-8), planted copies included.")
_COPIES = flags.DEFINE_float("copies", 0.1, "Planted near copies as a fraction of passages.")
_MAX_EDIT = flags.DEFINE_float("max_edit", 0.08, "Highest word edit rate of a planted copy.")
_ENGINES = flags.DEFINE_list("engines", ["local", "beam"], "local and/or beam (DirectRunner).")
_WORKERS = flags.DEFINE_integer("workers", 2, "Worker processes (local) / Beam workers.")
_THRESHOLD = flags.DEFINE_float("threshold", 0.5, "Near-duplicate Jaccard threshold.")
_SPEC = flags.DEFINE_string("spec", "",
                            "Cleaning spec; default dedupe_exact|dedupe_near(threshold).")
_SEED = flags.DEFINE_integer("seed", 0, "Corpus and planting seed.")
_SOURCES = flags.DEFINE_list(
    "sources", ["~/.rustup/toolchains/*/share/doc", "/usr/share/doc", "/usr/share/man",
                "/usr/lib/python3*/"], "Globs of folders with .html/.md/.rst/.txt(.gz) text.")
_WORK = flags.DEFINE_string("workdir", "", "Where the corpus is written (default: a temp dir).")
_EVALUATE = flags.DEFINE_bool("evaluate", True, "Compute recall and false removals (slow at 1 GB).")
_MEASURE = flags.DEFINE_string("measure", "", "Internal: run one engine on --workdir and exit.")

DELIM = "\n\x1e\n"  # record separator: never in the source text
PASSAGE_WORDS = 250
NGRAM = 5
_TAGS = re.compile(r"<(script|style|nav|header|footer)\b.*?</\1>|<[^>]+>", re.S | re.I)
_MAIN = re.compile(r"<main\b.*?</main>", re.S | re.I)
# API reference pages repeat one template per type, and print.html repeats a whole book.
_SKIP_DIRS = ("src", "__pycache__", "site-packages", "std", "core", "alloc", "type.impl",
              "search.index", "trait.impl", "static.files", "proc_macro", "test")


def _texts(sources):
  """Text of every documentation file under the sources, in a stable order."""
  seen = set()
  for pattern in sources:
    for root in sorted(glob.glob(os.path.expanduser(pattern))):
      for dirpath, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for n in sorted(names):
          path = os.path.join(dirpath, n)
          if (path in seen or n == "print.html" or re.search("COPYRIGHT|LICEN[CS]E|copyright", n)
              or not re.search(r"\.(html|md|rst|txt)(\.gz)?$|^README|changelog", n)):
            continue
          seen.add(path)
          try:
            raw = gzip.open(path).read() if n.endswith(".gz") else open(path, "rb").read()
          except OSError:
            continue
          text = raw.decode("utf-8", "replace")
          if ".htm" in n:
            main = _MAIN.search(text)
            text = html.unescape(_TAGS.sub(" ", main.group() if main else text))
          yield text


def _passages(sources, limit_bytes):
  """Distinct passages of ~PASSAGE_WORDS words, up to limit_bytes in all."""
  seen, total = set(), 0
  for text in _texts(sources):
    words = text.split()
    for i in range(0, len(words) - PASSAGE_WORDS // 2, PASSAGE_WORDS):
      p = " ".join(words[i:i + PASSAGE_WORDS])
      if p in seen:
        continue
      seen.add(p)
      total += len(p.encode()) + len(DELIM)
      yield p
      if total >= limit_bytes:
        return


def _perturb(words, rate, vocab, rng):
  out = []
  for w in words:
    r = rng.random()
    if r < rate / 3:
      out.append(vocab[rng.integers(len(vocab))])
    elif r < 2 * rate / 3:
      continue
    elif r < rate:
      out.extend([w, vocab[rng.integers(len(vocab))]])
    else:
      out.append(w)
  crop = rng.integers(0, len(out) // 10 + 1)
  return out[crop:] if rng.random() < 0.5 else out[:len(out) - crop]


def shingles(text):
  w = text.lower().split()
  if len(w) < NGRAM:
    return {tuple(w)} if w else set()
  return {tuple(w[i:i + NGRAM]) for i in range(len(w) - NGRAM + 1)}


def jaccard(a, b):
  return len(a & b) / len(a | b) if a and b else 0.0


def build(workdir, mb, copies, max_edit, seed, sources, truth=True):
  """Writes corpus files and truth.json: [(copy index, source index, Jaccard)]."""
  rng = np.random.default_rng(seed)
  base_bytes = mb * 1e6 / (1 + copies)
  docs = list(_passages(sources, base_bytes))
  got = sum(len(d.encode()) for d in docs) / 1e6
  if got < 0.95 * base_bytes / 1e6:
    raise SystemExit(f"Only {got:.1f} MB of text under {sources}; add --sources.")
  n = len(docs)
  vocab = " ".join(docs[:2000]).split()
  planted = []
  for src in rng.choice(n, int(n * copies), replace=True):
    words = _perturb(docs[src].split(), rng.uniform(0, max_edit), vocab, rng)
    planted.append((src, " ".join(words)))
  # Each copy goes anywhere after its source, so it is never the earliest of its group.
  srcs = np.asarray([s for s, _ in planted], np.float64)
  where = np.concatenate([np.arange(n, dtype=np.float64),
                          srcs + 0.5 + rng.random(len(planted)) * (n - srcs - 0.5)])
  order = np.argsort(where, kind="stable")
  texts = docs + [t for _, t in planted]
  folder = os.path.join(workdir, "corpus")
  os.makedirs(folder, exist_ok=True)
  position = {}
  for f, chunk in enumerate(np.array_split(order, max(1, len(order) // 500))):
    with open(os.path.join(folder, f"{f:05d}.txt"), "w") as fh:
      fh.write(DELIM.join(texts[i] for i in chunk))
    for part, i in enumerate(chunk):
      position[int(i)] = (f << 32) | part
  truth = [(position[n + k], position[int(src)], jaccard(shingles(t), shingles(docs[src])))
           for k, (src, t) in enumerate(planted)] if truth else []
  with open(os.path.join(workdir, "truth.json"), "w") as fh:
    json.dump({"truth": truth, "documents": len(texts), "planted": len(planted),
               "bytes": sum(len(t.encode()) for t in texts)}, fh)
  return texts, position


def _peak_rss_mb():
  """This process's peak RSS (VmHWM: unlike ru_maxrss, not inherited across fork and exec)."""
  with open("/proc/self/status") as f:
    return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def measure(workdir, engine, workers, spec):
  """In a fresh process: streams the corpus through one engine; writes the kept keys, the
  duplicate groups and the figures to <workdir>/<engine>.json."""
  from aigc_jax.data import clean  # pylint: disable=import-outside-toplevel
  from aigc_jax.data.builders import text_files  # pylint: disable=import-outside-toplevel
  opts = text_files.TextOptions(split_by="documents", delimiter=DELIM, clean=spec)
  files = text_files.text_file_paths(os.path.join(workdir, "corpus"))
  base_rss = _peak_rss_mb()
  t = time.perf_counter()
  if engine == "local":
    stats = {}
    with clean.clean_stream(text_files.iter_documents(files, opts, stats), spec,
                            workers=workers, progress="clean") as result:
      with open(os.path.join(workdir, "kept.txt"), "w") as out:  # read back, as a writer would
        kept = []
        for key, text in result:
          out.write(text)
          kept.append(key)
      report = result.report
      groups = [(k, r) for k, r, _ in result.duplicates()]
  else:
    import apache_beam as beam  # pylint: disable=import-outside-toplevel
    from apache_beam.options import pipeline_options  # pylint: disable=import-outside-toplevel
    out = os.path.join(workdir, "beam")
    reader = text_files.BeamReader(opts)
    corpus = clean.BeamCorpus([(i, f) for i, f in enumerate(files)], reader, spec, 0, 0.9,
                              os.path.join(workdir, "beam_report.json"), {})
    options = pipeline_options.PipelineOptions([f"--direct_num_workers={workers}",
                                                "--direct_running_mode=multi_processing"])
    with beam.Pipeline(runner="DirectRunner", options=options) as p:
      splits = [p | f"split{s}" >> corpus.split(s) for s in (True, False)]
      (splits | beam.Flatten() | beam.Map(lambda kv: kv[0])
       | beam.io.WriteToText(os.path.join(out, "kept")))
    kept = [int(x) for f in glob.glob(os.path.join(out, "kept*")) for x in open(f)]
    report = json.load(open(os.path.join(workdir, "beam_report.json")))
    groups = None
  seconds = time.perf_counter() - t
  with open(os.path.join(workdir, f"{engine}.json"), "w") as fh:
    json.dump({"seconds": seconds, "kept": sorted(kept), "report": report,
               "groups": groups,
               "rss_mb": _peak_rss_mb(), "base_rss_mb": base_rss,
               "workers_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024},
              fh)


def evaluate(texts_by_key, truth, kept, groups, threshold):
  """(recall, eligible, false removals, removed)."""
  kept = set(kept)
  eligible = [(c, s) for c, s, j in truth if j >= threshold]
  recall = sum(c not in kept for c, _ in eligible) / max(len(eligible), 1)
  removed = [k for k in texts_by_key if k not in kept]
  members = {}
  for k, r in groups.items():
    members.setdefault(r, [r]).append(k)
  false = 0
  cache = {}

  def sh(k):
    if k not in cache:
      cache[k] = shingles(texts_by_key[k])
    return cache[k]

  for k in removed:
    group = members.get(groups.get(k), [])
    if not any(o != k and jaccard(sh(k), sh(o)) >= threshold for o in group):
      false += 1
  return recall, len(eligible), false, len(removed)


def main(argv):
  del argv
  if _MEASURE.value:
    measure(_WORK.value, _MEASURE.value, _WORKERS.value, _SPEC.value)
    return
  workdir = _WORK.value or tempfile.mkdtemp(prefix="clean_bench_")
  spec = _SPEC.value or f"dedupe_exact|dedupe_near({_THRESHOLD.value})"
  t = time.perf_counter()
  texts, position = build(workdir, _MB.value, _COPIES.value, _MAX_EDIT.value, _SEED.value,
                          _SOURCES.value, _EVALUATE.value)
  by_key = {position[i]: t_ for i, t_ in enumerate(texts)}
  meta = json.load(open(os.path.join(workdir, "truth.json")))
  mb = meta["bytes"] / 1e6
  print(f"corpus: {meta['documents']:,} passages, {mb:.1f} MB, "
        f"{meta['planted']:,} planted copies ({time.perf_counter() - t:.0f} s to build)")
  local_groups = None
  for engine in _ENGINES.value:
    subprocess.run([sys.executable, "-m", "benchmarks.clean_throughput", f"--measure={engine}",
                    f"--workdir={workdir}", f"--workers={_WORKERS.value}", f"--spec={spec}"],
                   check=True)
    res = json.load(open(os.path.join(workdir, f"{engine}.json")))
    groups = {k: r for k, r in res["groups"]} if res["groups"] is not None else local_groups
    if engine == "local":
      local_groups, local_kept = groups, res["kept"]
    if _EVALUATE.value:
      recall, eligible, false, removed = evaluate(by_key, meta["truth"], res["kept"], groups or {},
                                                  _THRESHOLD.value)
    near = [s for s in res["report"]["stages"] if s["op"].startswith("dedupe_near")]
    sig_mb = meta["documents"] * 128 * 8 / 1e6
    phases = res["report"].get("phase_seconds")
    print(f"[{engine}, {_WORKERS.value} workers] {mb / res['seconds']:.1f} MB/s, "
          f"{meta['documents'] / res['seconds']:,.0f} documents/s ({res['seconds']:.1f} s"
          + (f"; {phases})" if phases else ")"))
    if _EVALUATE.value:
      print(f"  recall {recall:.2%} of {eligible:,} planted copies at Jaccard >= "
            f"{_THRESHOLD.value}; removed {removed:,}; false removals {false}")
    else:
      print(f"  kept {len(res['kept']):,} of {meta['documents']:,} documents")
    if near:
      print(f"  LSH {near[0]['bands']}x{near[0]['rows']}: {near[0]['pairs_checked']:,} "
            f"candidate pairs checked, {near[0]['rejected_by_exact_jaccard']:,} rejected by "
            "exact Jaccard")
    print(f"  peak RSS: cleaning process {res['rss_mb']:.0f} MB (at start {res['base_rss_mb']:.0f}"
          f" MB), workers {res['workers_rss_mb']:.0f} MB; signatures {sig_mb:.1f} MB")
    if engine == "beam" and local_groups is not None:
      print(f"  same kept set as local: {res['kept'] == local_kept}")
  if not _WORK.value:
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
  app.run(main)
