"""Near-duplicate removal at scale: throughput, memory, and whether each removal was right.

  python -m benchmarks.clean_throughput [--mb=32 --engines=local,beam --workers=2]
  python -m benchmarks.clean_throughput --corpus=stdlib --mb=32   # held-out Python source
  python -m benchmarks.clean_throughput --mb=1000 --engines=local --copies=0.5   # 1 GB

The corpus is passages, never the project's test data: `--corpus=docs`, documentation text already
on the machine (HTML pages, tags stripped, and plain-text docs under --sources) in passages of ~250
words; `--corpus=stdlib`, the running interpreter's standard library source (.py files in order,
cut at line ends into passages of ~160 words, whitespace kept), which holds natural near copies
(codec tables, test variants) besides the planted ones. Copies are planted: a random passage,
verbatim for a fraction `--exact_copies` of them, otherwise with word edits at a rate drawn from
[0, --max_edit] (replace, delete or insert a word, equally likely) and a crop of up to 10% at
either end, so their exact 5-gram Jaccard similarity to the source spans both sides of the
threshold. The corpus is written as files of delimited passages; the cleaning runs in a fresh
process that streams them, so its peak RSS is the engine's, not the corpus's. Ground truth is computed here, independently of the
engine: every pair of passages at Jaccard >= threshold, found exactly (Python sets of word
5-grams; prefix filtering proposes, the sets decide). Each engine is scored by its own kept set:
- precision: removals that a *kept* passage is a true near copy of; a removal whose near copies
  were all removed too is a chained removal (what connected components do), one with no near
  copy at all an unjustified one;
- recall: planted pairs at Jaccard >= threshold with one member removed and the other kept;
  pairs that lost both members; and near copies left in the kept set (LSH misses);
- plus MB/s, documents/s and peak RSS of the cleaning process and of its workers, next to the size
  of the corpus's MinHash signatures (documents x permutations x 8 bytes).
`--engine_root=DIR` measures another checkout's engine (its own measuring code, run from DIR) on
the same corpus and scores it the same way, e.g. `git archive HEAD | tar -x -C DIR` for before
and after.
"""

import collections
import glob
import gzip
import html
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time

import numpy as np
from absl import app, flags

_CORPUS = flags.DEFINE_enum("corpus", "docs", ["docs", "stdlib"],
                            "docs: documentation under --sources; stdlib: this Python's library.")
_MB = flags.DEFINE_float("mb", 32, "Corpus size in MB (UTF-8), planted copies included.")
_COPIES = flags.DEFINE_float("copies", 0.1, "Planted near copies as a fraction of passages.")
_MAX_EDIT = flags.DEFINE_float("max_edit", 0.08, "Highest word edit rate of a planted copy.")
_EXACT = flags.DEFINE_float("exact_copies", None, "Fraction of planted copies that are verbatim "
                            "(default: 0.2 for --corpus=stdlib, 0 for docs).")
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
_EVALUATE = flags.DEFINE_bool("evaluate", True, "Score precision and recall (slow at 1 GB).")
_ENGINE_ROOT = flags.DEFINE_string("engine_root", "",
                                   "Measure the engine of this checkout (e.g. an older commit's).")
_MEASURE = flags.DEFINE_string("measure", "", "Internal: run one engine on --workdir and exit.")

DELIM = "\n\x1e\n"  # record separator: never in the source text
PASSAGE_WORDS = 250
STDLIB_WORDS = 160  # ~1.7 KB of source a passage
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


def _doc_passages(sources):
  """Passages of ~PASSAGE_WORDS words of the documentation under the sources."""
  for text in _texts(sources):
    words = text.split()
    for i in range(0, len(words) - PASSAGE_WORDS // 2, PASSAGE_WORDS):
      yield " ".join(words[i:i + PASSAGE_WORDS])


def _stdlib_passages():
  """Passages of this interpreter's standard library source: lines of each .py file (in path
  order) up to ~STDLIB_WORDS words, as written; a file's tail under half of that dropped."""
  root = sysconfig.get_paths()["stdlib"]
  for dirpath, dirs, names in os.walk(root):
    dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "__pycache__"))
    for n in sorted(x for x in names if x.endswith(".py")):
      text = open(os.path.join(dirpath, n), "rb").read().decode("utf-8", "replace")
      lines, words = [], 0
      for line in text.replace("\r\n", "\n").split("\n") + [None]:
        if line is not None:
          lines.append(line)
          words += len(line.split())
        if words >= STDLIB_WORDS or (line is None and words >= STDLIB_WORDS // 2):
          if "\x1e" not in "".join(lines):
            yield "\n".join(lines).strip("\n")
          lines, words = [], 0


def _distinct(passages, limit_bytes):
  """The first occurrence of each passage, up to limit_bytes in all."""
  seen, total = set(), 0
  for p in passages:
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


def build(workdir, mb, copies, max_edit, seed, passages, exact=0.0, truth=True):
  """Writes corpus files and truth.json: [(copy key, source key, Jaccard)]; returns the texts and
  each one's key. Base passages: the first distinct ones of `passages`."""
  rng = np.random.default_rng(seed)
  base_bytes = mb * 1e6 / (1 + copies)
  docs = list(_distinct(passages, base_bytes))
  got = sum(len(d.encode()) for d in docs) / 1e6
  if got < 0.95 * base_bytes / 1e6:
    raise SystemExit(f"Only {got:.1f} MB of passages; lower --mb or add --sources.")
  n = len(docs)
  vocab = " ".join(docs[:2000]).split()
  planted = []
  srcs = rng.choice(n, int(n * copies), replace=True)
  verbatim = np.random.default_rng([seed, 1]).random(len(srcs)) < exact  # own stream
  for src, same in zip(srcs, verbatim):
    if same:
      planted.append((src, docs[src]))
      continue
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
               "verbatim": int(verbatim.sum()), "bytes": sum(len(t.encode()) for t in texts)}, fh)
  return texts, [position[i] for i in range(len(texts))]


def near_pairs(texts, threshold):
  """{i: {j, ...}}: every pair of texts whose word 5-gram sets have Jaccard >= threshold, found
  exactly and independently of the engine. Prefix filtering proposes (shingles in order of
  rarity; two sets at Jaccard >= t share one among the first |A| - ceil(t |A|) + 1 of each), the
  Python sets decide."""
  sets = [shingles(t) for t in texts]
  df = collections.Counter(x for s in sets for x in s)
  index, proposed = collections.defaultdict(list), set()
  for i, s in enumerate(sets):
    prefix = sorted((df[x], x) for x in s)[:len(s) - math.ceil(threshold * len(s) - 1e-9) + 1]
    for count, x in prefix:
      if count > 1:
        proposed.update((j, i) for j in index[x])
        index[x].append(i)
  del index
  out = collections.defaultdict(set)
  for i, j in proposed:
    if jaccard(sets[i], sets[j]) >= threshold:
      out[i].add(j)
      out[j].add(i)
  return out


def _peak_rss_mb():
  """This process's peak RSS (VmHWM: unlike ru_maxrss, not inherited across fork and exec)."""
  with open("/proc/self/status") as f:
    return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def measure(workdir, engine, workers, spec):
  """In a fresh process: streams the corpus through one engine; writes the kept keys and the
  figures to <workdir>/<engine>.json."""
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
  else:
    import apache_beam as beam  # pylint: disable=import-outside-toplevel
    from apache_beam.options import pipeline_options  # pylint: disable=import-outside-toplevel
    out = os.path.join(workdir, "beam")
    reader = text_files.BeamReader(opts)
    corpus = clean.BeamCorpus([(i, f) for i, f in enumerate(files)], reader, spec, 0, (0.9,),
                              os.path.join(workdir, "beam_report.json"), {})
    options = pipeline_options.PipelineOptions([f"--direct_num_workers={workers}",
                                                "--direct_running_mode=multi_processing"])
    with beam.Pipeline(runner="DirectRunner", options=options) as p:
      splits = [p | f"split{s}" >> corpus.split(s) for s in (0, 1)]
      (splits | beam.Flatten() | beam.Map(lambda kv: kv[0])
       | beam.io.WriteToText(os.path.join(out, "kept")))
    kept = [int(x) for f in glob.glob(os.path.join(out, "kept*")) for x in open(f)]
    report = json.load(open(os.path.join(workdir, "beam_report.json")))
  seconds = time.perf_counter() - t
  with open(os.path.join(workdir, f"{engine}.json"), "w") as fh:
    json.dump({"seconds": seconds, "kept": sorted(kept), "report": report,
               "rss_mb": _peak_rss_mb(), "base_rss_mb": base_rss,
               "workers_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024},
              fh)


def evaluate(keys, truth, kept, near, threshold) -> dict:
  """An engine scored by its own kept set. keys[i]: text i's key; near: near_pairs' answer."""
  kept = set(kept)
  alive = [k in kept for k in keys]
  covered = [any(alive[j] for j in near.get(i, ())) for i in range(len(keys))]
  by_key = dict(zip(keys, range(len(keys))))
  out = dict.fromkeys(("correct", "chained", "unjustified", "left_in", "eligible", "recovered",
                       "lost_both", "missed", "lost_both_covered"), 0)
  out["removed"] = alive.count(False)
  for i, k in enumerate(keys):
    if alive[i]:  # a kept text with a kept near copy before it: a duplicate left in
      out["left_in"] += any(alive[j] and keys[j] < k for j in near.get(i, ()))
    elif covered[i]:
      out["correct"] += 1
    else:
      out["chained" if near.get(i) else "unjustified"] += 1
  for c, src, jac in truth:
    if jac >= threshold:
      c, src = by_key[c], by_key[src]
      out["eligible"] += 1
      out[("lost_both", "recovered", "missed")[alive[c] + alive[src]]] += 1
      out["lost_both_covered"] += not alive[c] and not alive[src] and covered[c] and covered[src]
  return dict(out, precision=out["correct"] / max(out["removed"], 1),
              recall=out["recovered"] / max(out["eligible"], 1))


def main(argv):
  del argv
  if _MEASURE.value:
    measure(_WORK.value, _MEASURE.value, _WORKERS.value, _SPEC.value)
    return
  workdir = os.path.abspath(_WORK.value or tempfile.mkdtemp(prefix="clean_bench_"))
  spec = _SPEC.value or f"dedupe_exact|dedupe_near({_THRESHOLD.value})"
  t = time.perf_counter()
  stdlib = _CORPUS.value == "stdlib"
  passages = _stdlib_passages() if stdlib else _doc_passages(_SOURCES.value)
  exact = _EXACT.value if _EXACT.value is not None else 0.2 if stdlib else 0.0
  texts, keys = build(workdir, _MB.value, _COPIES.value, _MAX_EDIT.value, _SEED.value, passages,
                      exact, _EVALUATE.value)
  meta = json.load(open(os.path.join(workdir, "truth.json")))
  mb = meta["bytes"] / 1e6
  print(f"corpus ({_CORPUS.value}): {meta['documents']:,} passages, {mb:.1f} MB, "
        f"{meta['planted']:,} planted copies ({meta['verbatim']:,} verbatim) "
        f"({time.perf_counter() - t:.0f} s to build)")
  if _EVALUATE.value:
    t = time.perf_counter()
    near = near_pairs(texts, _THRESHOLD.value)
    print(f"truth: {sum(map(len, near.values())) // 2:,} pairs at Jaccard >= {_THRESHOLD.value} "
          f"among {len(near):,} passages ({time.perf_counter() - t:.0f} s)")
  del texts
  local_kept = None
  for engine in _ENGINES.value:
    subprocess.run([sys.executable, "-m", "benchmarks.clean_throughput", f"--measure={engine}",
                    f"--workdir={workdir}", f"--workers={_WORKERS.value}", f"--spec={spec}"],
                   check=True, cwd=_ENGINE_ROOT.value or None)
    res = json.load(open(os.path.join(workdir, f"{engine}.json")))
    near_stage = [s for s in res["report"]["stages"] if s["op"].startswith("dedupe_near")]
    sig_mb = meta["documents"] * 128 * 8 / 1e6
    phases = res["report"].get("phase_seconds")
    print(f"[{engine}, {_WORKERS.value} workers] {mb / res['seconds']:.1f} MB/s, "
          f"{meta['documents'] / res['seconds']:,.0f} documents/s ({res['seconds']:.1f} s"
          + (f"; {phases})" if phases else ")"))
    print(f"  kept {len(res['kept']):,} of {meta['documents']:,} passages")
    if _EVALUATE.value:
      e = evaluate(keys, meta["truth"], res["kept"], near, _THRESHOLD.value)
      print(f"  precision {e['precision']:.2%}: of {e['removed']:,} removed, {e['correct']:,} have "
            f"a kept near copy; chained (near copies all removed) {e['chained']:,}, "
            f"unjustified (no near copy) {e['unjustified']:,}")
      print(f"  recall {e['recall']:.2%} of {e['eligible']:,} planted pairs at Jaccard >= "
            f"{_THRESHOLD.value} (one kept, one removed); lost both {e['lost_both']:,} "
            f"({e['lost_both_covered']:,} of them with a kept near copy of each), both "
            f"kept {e['missed']:,}; kept with a kept near copy {e['left_in']:,}")
    if near_stage:
      print(f"  LSH {near_stage[0]['bands']}x{near_stage[0]['rows']}: "
            f"{near_stage[0]['pairs_checked']:,} candidate pairs checked, "
            f"{near_stage[0]['rejected_by_exact_jaccard']:,} rejected by exact Jaccard")
    print(f"  peak RSS: cleaning process {res['rss_mb']:.0f} MB (at start {res['base_rss_mb']:.0f}"
          f" MB), workers {res['workers_rss_mb']:.0f} MB; signatures {sig_mb:.1f} MB")
    if engine == "local":
      local_kept = res["kept"]
    elif local_kept is not None:
      print(f"  same kept set as local: {res['kept'] == local_kept}")
  if not _WORK.value:
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
  app.run(main)
