"""The workdir's logs: metrics.jsonl, TensorBoard events, PNG plots and the progress bar.

Workdir files go through etils.epath, so a workdir may be a local path or cloud storage
(gs://bucket/run, where orbax writes the checkpoints too).
"""

import collections
import io
import json
import os
import re
import sys
import time

from etils import epath
import jax
import numpy as np


def is_local(path) -> bool:
  return "://" not in str(path)


def atomic_write(path, data: str | bytes) -> None:
  """Writes `path` (local or cloud) whole or not at all (temporary file, then rename): a kill
  never leaves a half-written file where a reader expects a complete one. Makes its folder."""
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.parent / f"{path.name}.tmp-{os.getpid()}"
  if isinstance(data, bytes):
    tmp.write_bytes(data)
  else:
    tmp.write_text(data)
  tmp.replace(path)


class MetricWriter:
  """Appends {"step", "split", ...} events to metrics.jsonl (and TensorBoard) on process 0.

  On resume, events after the restored step are dropped: the resumed run logs them again.
  Cloud storage cannot append, so there each write replaces the file (atomically).
  """

  def __init__(self, workdir: str, resume_step: int = 0, tensorboard: bool = True):
    self.path = epath.Path(workdir) / "metrics.jsonl"
    self.plot_dir = epath.Path(workdir) / "plots"
    self.active = jax.process_index() == 0
    self._tb = None
    if not self.active:
      return
    self._lines = [json.dumps(e) + "\n" for e in read_metrics(self.path)
                   if e["step"] <= resume_step] if resume_step else []
    atomic_write(self.path, "".join(self._lines))
    if tensorboard and not is_local(workdir):
      print(f"TensorBoard events are written for local workdirs only, not {workdir}.")
    elif tensorboard:
      from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, split: str, metrics: dict) -> None:
    if not self.active:
      return
    event = {"step": int(step), "split": split, **{k: float(v) for k, v in metrics.items()}}
    self._lines.append(json.dumps(event) + "\n")
    if is_local(self.path):
      with self.path.open("a") as f:
        f.write(self._lines[-1])
    else:
      atomic_write(self.path, "".join(self._lines))
    if self._tb is not None:
      for k, v in metrics.items():
        self._tb.add_scalar(f"{split}/{k}", float(v), int(step))
      self._tb.flush()

  def plot(self) -> None:
    if self.active:
      plot_metrics(read_metrics(self.path), self.plot_dir)

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def read_metrics(path) -> list[dict]:
  path = epath.Path(path)
  if not path.exists():
    return []
  events = []
  with path.open() as f:
    for line in f:
      try:
        events.append(json.loads(line))
      except json.JSONDecodeError:  # a line cut short by a kill; the resumed run rewrites it
        continue
  return events


def pyplot():
  """matplotlib's pyplot on the Agg backend (no display needed)."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  return plt


def save_figure(fig, path, dpi: int = 110) -> str:
  """`fig` as a PNG at `path` (local or cloud), written whole or not at all; closes it."""
  fig.tight_layout()
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=dpi)
  pyplot().close(fig)
  atomic_write(path, buf.getvalue())
  return str(path)


def plot_metrics(events: list[dict], plot_dir) -> list[str]:
  """One PNG per metric, a line per split (train/test ...), against the step."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  series = collections.defaultdict(lambda: collections.defaultdict(list))
  for e in events:
    for k, v in e.items():
      # Per-horizon video metrics (mse_frame11 ...) have their own plot (video_prediction).
      if k not in ("step", "split") and not re.search(r"_frame\d+$", k):
        series[k][e["split"]].append((e["step"], v))
  plot_dir = epath.Path(plot_dir)
  plot_dir.mkdir(parents=True, exist_ok=True)
  paths = []
  for name, splits in series.items():
    if max(len(points) for points in splits.values()) < 2:
      continue  # a value logged once (a final probe, a baseline) is read in summary.json
    fig, ax = plt.subplots(figsize=(6, 4))
    for split, points in sorted(splits.items()):
      steps, values = np.array(points).T
      ax.plot(steps, values, label=split, marker="o" if len(points) < 30 else None)
    ax.set_xlabel("step")
    ax.set_ylabel(name)
    if name in ("loss", "grad_norm") and all(v > 0 for s in splits.values() for _, v in s):
      ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    path = plot_dir / f"{name}.png"
    atomic_write(path, buf.getvalue())
    paths.append(str(path))
  return paths


class LineProgress:
  """Progress without a terminal (logs redirected, batch jobs): one plain line per log interval
  (each `set_postfix`), instead of a bar redrawn with carriage returns."""

  def __init__(self, total: int, initial: int, quiet: bool = False):
    self.total, self.n, self._start_n = total, initial, initial
    self._t0 = time.perf_counter()
    self._pending = None
    self._quiet = quiet  # progress off, or not the first host

  def set_postfix(self, values: dict) -> None:
    self._pending = values  # printed once the step it describes is counted

  def update(self, k: int = 1) -> None:
    self.n += k
    if self._pending is None or self._quiet:
      return
    rate = (self.n - self._start_n) / max(time.perf_counter() - self._t0, 1e-9)
    eta = (self.total - self.n) / rate if rate > 0 else float("inf")
    fields = " ".join(f"{k}={v}" for k, v in self._pending.items())
    print(f"step {self.n}/{self.total} ({100 * self.n / self.total:.0f}%) {fields} "
          f"{rate:.2f} step/s, {eta:.0f} s left", file=sys.stderr, flush=True)
    self._pending = None

  def close(self) -> None:
    pass


def _in_notebook() -> bool:
  """Inside a Jupyter/Colab kernel (its output is no TTY, but it draws tqdm's widget bar)."""
  ipython = sys.modules.get("IPython")
  shell = ipython.get_ipython() if ipython is not None else None
  return getattr(shell, "kernel", None) is not None


def progress_bar(total: int, initial: int, enabled: bool):
  """A tqdm bar on a terminal or in a notebook; plain lines when output goes to a file."""
  if not enabled or jax.process_index() != 0:
    return LineProgress(total, initial, quiet=True)
  if not _in_notebook() and not sys.stderr.isatty():
    return LineProgress(total, initial)
  from tqdm import auto as tqdm  # pylint: disable=import-outside-toplevel
  return tqdm.tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, mininterval=1.0)
