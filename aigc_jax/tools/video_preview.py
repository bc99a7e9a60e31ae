"""Draws the first sequences of a generated Moving MNIST split as one PNG, a row per sequence.

  python -m aigc_jax.tools.video_preview --out=DIR [--split=test --num=8 --digits=mnist_idx]
"""

import argparse
import os

import numpy as np

from aigc_jax import config as config_lib
from aigc_jax.data import video
from aigc_jax.evaluators import grid


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--out", required=True)
  p.add_argument("--split", default="test")
  p.add_argument("--num", type=int, default=8)
  p.add_argument("--digits", default="mnist_idx", help="the digit data set (data.name)")
  p.add_argument("--frames", type=int, default=20)
  a = p.parse_args(argv)
  c = config_lib.get_config()
  c.data.name = a.digits
  c.data.video.frames = a.frames
  s = video.load_split(c.data, a.split)
  frames = s.load(np.arange(a.num))[s.key]  # [N, T, H, W, 1]
  os.makedirs(a.out, exist_ok=True)
  print(grid.save(frames.reshape((-1,) + frames.shape[2:]), os.path.join(a.out, f"{a.split}.png"),
                  ncol=frames.shape[1], value_range=(0, 255)))


if __name__ == "__main__":
  main()
