"""Any folder of class sub-folders of PNG/JPEG images as a tfds data set: `image_folder/<folder>`.

The folder is `<data dir>/<folder>/`; each sub-folder is a class (labels: sorted folder names) and
holds images (.png/.jpg/.jpeg, decoded with Pillow; other files are skipped). If the folder holds
`train/` and `test/` and/or `validation/` of class sub-folders, those are the splits; otherwise
(or with `train/` alone) a seeded shuffle of each class puts `data.image.train_fraction` of it in
train, the rest in test.
Images are stored as uint8 HxWxC tensors: all of one size (`data.image.size` resizes them) and
channel count (`data.image.channels`, else the first image's).
"""

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from aigc_jax.data.builders import FolderConfig, folder_config, image_label_info
from aigc_jax.errors import ConfigError

EXTENSIONS = (".png", ".jpg", ".jpeg")
SPLIT_FOLDERS = ("train", "validation", "test")
_GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F")


@dataclasses.dataclass
class ImageOptions:
  """`config.data.image`: class sub-folders of PNG/JPEG."""
  size: int = 0  # resize to size x size at build time; 0 keeps the files' (common) size
  channels: int = 0  # 1 (grey) or 3 (RGB); 0 takes the first image's
  train_fraction: float = 0.8  # used when the folder has no train/ and test/ sub-folders
  seed: int = 0


SECTION = ("image", ImageOptions)  # the config.data key this builder reads its options from


def make_config(folder: str, data_config) -> FolderConfig:
  """The builder config for `folder`; non-default options get their own prepared copy."""
  if not folder:
    raise ConfigError("image_folder needs a folder: data.name='image_folder/<folder under data "
                      "dir>'.")
  try:
    opts = ImageOptions(**dict(data_config.image))
  except TypeError as e:
    raise ConfigError(f"Bad data.image block ({e}); valid keys: "
                      f"{', '.join(f.name for f in dataclasses.fields(ImageOptions))}.") from None
  if not (isinstance(opts.size, int) and opts.size >= 0):
    raise ConfigError(f"data.image.size={opts.size!r}; use a side length in pixels, or 0 to keep "
                      "the images' own (common) size.")
  if opts.channels not in (0, 1, 3):
    raise ConfigError(f"data.image.channels={opts.channels!r}; valid: 1 (grey), 3 (RGB), 0 (the "
                      "first image's).")
  if not 0.0 < opts.train_fraction < 1.0:
    raise ConfigError(f"data.image.train_fraction must be in (0, 1), got {opts.train_fraction}.")
  return folder_config(folder, opts, f"Images of {folder}/, one class per sub-folder.")


def _subdirs(path: str) -> list[str]:
  return sorted(d for d in os.listdir(path)
                if not d.startswith(".") and os.path.isdir(os.path.join(path, d)))


def _images(class_dir: str) -> tuple[list[str], int]:
  """(image paths under `class_dir`, sorted and recursive; number of other files skipped)."""
  images, skipped = [], 0
  for root, dirs, names in os.walk(class_dir):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    for n in sorted(n for n in names if not n.startswith(".")):
      if n.lower().endswith(EXTENSIONS):
        images.append(os.path.join(root, n))
      else:
        skipped += 1
  return images, skipped


def _split_roots(folder: str) -> dict[str, str]:
  """{split: folder of class folders}, or {"all": the folder of class folders} to carve."""
  subs = _subdirs(folder)
  roots = {s: os.path.join(folder, s) for s in SPLIT_FOLDERS
           if s in subs and _subdirs(os.path.join(folder, s))}
  if not roots:
    return {"all": folder}
  if "train" not in roots:
    raise ConfigError(f"{folder} has {', '.join(roots)}/ but no train/ of class sub-folders; add "
                      f"{folder}/train/<class>/ (or rename the split folders if they are classes).")
  return roots if len(roots) > 1 else {"all": roots["train"]}  # train/ alone is carved


def list_files(folder: str) -> tuple[dict[str, list[tuple[str, str]]], int]:
  """({split or "all": [(path, class name)]}, number of non-image files skipped)."""
  if not os.path.isdir(folder):
    raise ConfigError(f"Image folder {folder} does not exist: image_folder/<folder> reads "
                      "<data dir>/<folder>/ (data dir: --config.data.data_dir or $AIGC_JAX_DATA).")
  out, skipped = {}, 0
  for split, root in _split_roots(folder).items():
    classes = _subdirs(root)
    if not classes:
      raise ConfigError(f"Image folder {root} has no class sub-folders; put each class's images "
                        f"in its own sub-folder ({root}/<class>/*.png).")
    out[split] = []
    for c in classes:
      paths, n = _images(os.path.join(root, c))
      out[split].extend((p, c) for p in paths)
      skipped += n
    if not out[split]:
      raise ConfigError(f"The class folders of {root} hold no images; put .png/.jpg/.jpeg files "
                        f"in them ({root}/<class>/*.png).")
  return out, skipped


def check_raw(raw_dir: str, config: FolderConfig) -> None:
  list_files(os.path.join(raw_dir, config.folder))


def carve(files: list, fraction: float, seed: int) -> dict[str, list]:
  """A seeded shuffle of each class, its first `fraction` to train: every class in both splits."""
  rng = np.random.default_rng(seed)
  out = {"train": [], "test": []}
  for c in sorted({c for _, c in files}):
    mine = [f for f in files if f[1] == c]
    order = rng.permutation(len(mine))
    cut = round(len(mine) * fraction)
    out["train"] += [mine[i] for i in order[:cut]]
    out["test"] += [mine[i] for i in order[cut:]]
  if not out["test"] or not out["train"]:
    raise ConfigError(f"data.image.train_fraction={fraction} of {len(files)} image(s) leaves a "
                      "split empty; add images or change the fraction.")
  return out


def decode(path: str, mode: str, size: int) -> np.ndarray:
  """One image as uint8 HxWxC in Pillow `mode` ("L" or "RGB"), resized to size x size if > 0."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  try:
    with Image.open(path) as img:
      img.load()  # decodes now, so a truncated file fails here, named
      img = img.convert(mode)
  except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
    raise ConfigError(f"Cannot decode image {path} ({e}); replace or delete the file.") from None
  if size:
    img = img.resize((size, size), Image.Resampling.BILINEAR)
  x = np.asarray(img, np.uint8)
  return x[..., None] if x.ndim == 2 else x


def peek(path: str) -> tuple[str, tuple[int, int]]:
  """(Pillow mode to store it in, (height, width)) from an image's header."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  try:
    with Image.open(path) as img:
      return ("L" if img.mode in _GREY_MODES else "RGB"), img.size[::-1]
  except (OSError, SyntaxError, ValueError) as e:
    raise ConfigError(f"Cannot decode image {path} ({e}); replace or delete the file.") from None


class Builder(tfds.core.GeneratorBasedBuilder):
  """A folder of class folders of images; configs are made per folder by `make_config`."""

  name = "image_folder"
  VERSION = tfds.core.Version("1.0.0")
  MANUAL_DOWNLOAD_INSTRUCTIONS = "Set $AIGC_JAX_DATA to a folder holding <folder>/<class>/*.png."

  def _info(self):
    opts = self.builder_config.options
    # Unknown sizes are stored per image; labels are named at build time.
    shape = (opts.size or None, opts.size or None, opts.channels or None)
    return image_label_info(self, shape, tfds.features.ClassLabel(), __doc__)

  def _split_generators(self, dl_manager):
    opts = self.builder_config.options
    folder = os.path.join(str(dl_manager.manual_dir), self.builder_config.folder)
    splits, skipped = list_files(folder)
    if skipped:
      print(f"image_folder/{self.builder_config.folder}: skipped {skipped} files that are not "
            f"{'/'.join(EXTENSIONS)}", flush=True)
    first = next(iter(splits.values()))[0][0]
    mode, hw = peek(first)  # every image must match the first one's size and (default) mode
    if "all" in splits:
      splits = carve(splits["all"], opts.train_fraction, opts.seed)
    names = sorted({c for files in splits.values() for _, c in files})
    self.info.features["label"].names = names
    mode = {1: "L", 3: "RGB"}.get(opts.channels, mode)
    ref = (first, (opts.size, opts.size) if opts.size else hw)
    return {s: self._generate_examples(files, folder, mode, names, ref)
            for s, files in splits.items()}

  def _generate_examples(self, files, folder, mode, names, ref):
    index = {c: i for i, c in enumerate(names)}
    for path, c in files:
      x = decode(path, mode, self.builder_config.options.size)
      if x.shape[:2] != ref[1]:
        raise ConfigError(f"{path} is {x.shape[1]}x{x.shape[0]} (width x height) but {ref[0]} is "
                          f"{ref[1][1]}x{ref[1][0]}: images must share one size. Set "
                          "data.image.size to resize them all at build time.")
      yield os.path.relpath(path, folder), {"image": x, "label": index[c]}
