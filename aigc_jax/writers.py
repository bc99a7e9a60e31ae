"""The workdir's logs: metrics.jsonl, TensorBoard events, PNG plots and the progress bar."""

import collections
import json
import os
import sys
import time

import jax
import numpy as np


def atomic_write(path: str, data: str | bytes) -> None:
  """Writes `path` whole or not at all (temporary file, then rename): a kill never leaves a
  half-written file where a reader expects a complete one."""
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
    f.write(data)
  os.replace(tmp, path)


class MetricWriter:
  """Appends {"step", "split", ...} events to metrics.jsonl (and TensorBoard) on process 0.

  On resume, events after the restored step are dropped: the resumed run logs them again.
  """

  def __init__(self, workdir: str, resume_step: int = 0, tensorboard: bool = True):
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.plot_dir = os.path.join(workdir, "plots")
    self.active = jax.process_index() == 0
    self._tb = None
    if not self.active:
      return
    kept = [e for e in read_metrics(self.path) if e["step"] <= resume_step] if resume_step else []
    with open(self.path, "w") as f:
      f.writelines(json.dumps(e) + "\n" for e in kept)
    if tensorboard:
      from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, split: str, metrics: dict) -> None:
    if not self.active:
      return
    event = {"step": int(step), "split": split, **{k: float(v) for k, v in metrics.items()}}
    with open(self.path, "a") as f:
      f.write(json.dumps(event) + "\n")
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


def read_metrics(path: str) -> list[dict]:
  if not os.path.exists(path):
    return []
  events = []
  with open(path) as f:
    for line in f:
      try:
        events.append(json.loads(line))
      except json.JSONDecodeError:  # a line cut short by a kill; the resumed run rewrites it
        continue
  return events


def plot_metrics(events: list[dict], plot_dir: str) -> list[str]:
  """One PNG per metric, a line per split (train/test ...), against the step."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  series = collections.defaultdict(lambda: collections.defaultdict(list))
  for e in events:
    for k, v in e.items():
      if k not in ("step", "split"):
        series[k][e["split"]].append((e["step"], v))
  os.makedirs(plot_dir, exist_ok=True)
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
    path = os.path.join(plot_dir, f"{name}.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)
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
