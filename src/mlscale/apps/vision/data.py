"""Labelled images for the vision application, read in batches and never all decoded at once.

Three layouts, found by :func:`open_dataset`:

- a catalogue data set of IDX arrays (``fashion-mnist``, under the data dir), or a folder holding
  ``train-images-idx3-ubyte[.gz]`` / ``t10k-images-idx3-ubyte[.gz]`` and their label files: the raw
  arrays are read once (47 MB for Fashion-MNIST's training set) and batches are slices of them;
- a folder with one sub-folder of PNG/JPEG images per class (``shirts/0001.png``...), or with
  ``train/`` and ``test/`` folders of that layout; classes are the sorted sub-folder names;
- a Parquet or CSV file with columns ``path,label`` (paths relative to the file's folder).

Image files are decoded with Pillow only when a batch needs them (:meth:`ImageDataset.read`). A
bad file (not a PNG/JPEG, truncated, an unsupported mode, another size than the data set's, or
more than ``max_pixels`` pixels: a decompression bomb, refused from its header before it is
decoded) raises :class:`BadImageError` naming the file, or with ``on_error="skip"`` is left out
and counted (:attr:`ImageDataset.skipped`).

Images come out as ``uint8`` arrays of shape ``N x H x W x C`` (C = 1 grey, 3 RGB).

>>> import numpy as np
>>> ds = ArrayDataset(np.zeros((5, 4, 4), np.uint8), np.array([0, 1, 0, 1, 1]), ("a", "b"), where="toy")
>>> x, y, kept = ds.read(np.array([4, 0]))
>>> x.shape, y.tolist(), kept.tolist(), ds.class_counts().tolist()
((2, 4, 4, 1), [1, 0], [4, 0], [2, 3])
"""

from __future__ import annotations

import abc
import csv
import hashlib
import io
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from numpy.typing import NDArray

from mlscale.apps.vision._deps import require
from mlscale.data.catalogue import get_dataset
from mlscale.data.formats.idx import read_idx
from mlscale.errors import DataError, DataFormatError, DatasetNotFoundError, ValidationError

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_PIXELS",
    "ArrayDataset",
    "BadImageError",
    "FileDataset",
    "ImageDataset",
    "decode_image",
    "list_images",
    "open_dataset",
]

#: File suffixes taken as images in folders.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: Default ceiling on width x height: larger images are refused from their header (decompression bombs).
MAX_PIXELS = 4096 * 4096
#: Modes converted to grey or RGB; any other (CMYK, 16-bit, float...) is refused.
_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA"})
_IDX = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class BadImageError(DataFormatError):
    """An image file or body that cannot be used; names it and says why (HTTP 422)."""

    http_status = 422


def decode_image(
    data: bytes,
    *,
    where: str,
    channels: int | None = None,
    size: tuple[int, int] | None = None,
    resize: bool = False,
    max_pixels: int = MAX_PIXELS,
) -> NDArray[np.uint8]:
    """Decode one PNG or JPEG into ``H x W x C`` uint8.

    ``channels`` (1 or 3) converts the mode (None keeps grey as 1 and
    colour as 3). ``size`` is ``(height, width)``: an image of another size
    is refused, or with ``resize`` resized (bilinear). Raises
    :class:`BadImageError` naming ``where``.
    """
    image_mod = require("PIL.Image")
    try:
        with warnings.catch_warnings():
            # Pillow warns (and, past twice its limit, raises) on huge images; our own check below is stricter.
            warnings.simplefilter("ignore", image_mod.DecompressionBombWarning)
            image = image_mod.open(io.BytesIO(data), formats=("PNG", "JPEG"))
            w, h = image.size
            if w * h > max_pixels:
                raise BadImageError(
                    f"refused: {w}x{h} pixels is more than the {max_pixels:,} allowed (a decompression bomb?)",
                    path=where,
                )
            if image.mode not in _MODES:
                raise BadImageError(
                    f"unsupported image mode {image.mode!r}; expected one of {', '.join(sorted(_MODES))}", path=where
                )
            image.load()
    except BadImageError:
        raise
    except image_mod.DecompressionBombError as err:
        raise BadImageError(f"refused: {err}", path=where) from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        kind = "not a PNG or JPEG image" if isinstance(err, image_mod.UnidentifiedImageError) else f"unreadable ({err})"
        raise BadImageError(kind, path=where) from None
    want = channels if channels is not None else (1 if image.mode in ("1", "L", "LA") else 3)
    image = image.convert("L" if want == 1 else "RGB")
    if size is not None and (image.height, image.width) != size:
        if not resize:
            raise BadImageError(
                f"image is {image.height}x{image.width} (height x width), expected {size[0]}x{size[1]}", path=where
            )
        image = image.resize((size[1], size[0]), image_mod.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array.reshape(array.shape[0], array.shape[1], want)


class ImageDataset(abc.ABC):
    """Labelled images addressed by index; :meth:`read` decodes only the ones asked for."""

    #: Class names; a label is an index into them.
    labels: tuple[str, ...]
    #: Label of every item (cheap: no image is decoded).
    targets: NDArray[np.int64]
    #: ``(height, width, channels)`` of every image.
    shape: tuple[int, int, int]
    #: Where the images come from, for messages.
    where: str

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def skipped(self) -> int:
        """Bad files left out so far (``on_error="skip"``)."""
        return 0

    @abc.abstractmethod
    def read(self, indices: NDArray[np.int64]) -> tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.int64]]:
        """Images ``N x H x W x C``, their labels, and the indices kept (bad files skipped), in order."""

    @abc.abstractmethod
    def fingerprint(self) -> str:
        """A short hash of what the data set holds (for a manifest's ``data_fingerprint``)."""

    def class_counts(self) -> NDArray[np.int64]:
        """Items per class."""
        return np.bincount(self.targets, minlength=len(self.labels)).astype(np.int64)

    def batches(
        self, batch_size: int, indices: NDArray[np.int64] | None = None
    ) -> Iterator[tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.int64]]]:
        """:meth:`read` over ``indices`` (default: all, in order), ``batch_size`` at a time."""
        idx = np.arange(len(self), dtype=np.int64) if indices is None else indices
        for start in range(0, len(idx), batch_size):
            x, y, kept = self.read(idx[start : start + batch_size])
            if len(kept):
                yield x, y, kept


class ArrayDataset(ImageDataset):
    """Images already in one ``uint8`` array (``N x H x W`` or ``N x H x W x C``), such as an IDX file."""

    def __init__(self, images: NDArray[np.uint8], targets: NDArray[Any], labels: Sequence[str], *, where: str) -> None:
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.dtype != np.uint8:
            raise DataFormatError(
                f"expected uint8 images N x H x W [x C], got {images.dtype}{images.shape}", path=where
            )
        if len(images) != len(targets):
            raise DataFormatError(f"{len(images)} images but {len(targets)} labels", path=where)
        self.images = images
        self.targets = np.asarray(targets, dtype=np.int64)
        self.labels = tuple(labels)
        self.shape = (int(images.shape[1]), int(images.shape[2]), int(images.shape[3]))
        self.where = where
        if len(self.targets) and not 0 <= int(self.targets.min()) <= int(self.targets.max()) < len(self.labels):
            raise DataFormatError(f"labels outside 0..{len(self.labels) - 1}", path=where)

    def read(self, indices: NDArray[np.int64]) -> tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.int64]]:
        return self.images[indices], self.targets[indices], indices

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update(self.images.tobytes())
        h.update(self.targets.tobytes())
        return "sha256:" + h.hexdigest()[:32]


class FileDataset(ImageDataset):
    """PNG/JPEG files with a label each, decoded a batch at a time.

    ``shape`` is probed from the first readable file unless given; every
    other image must have the same size (``resize=True`` resizes instead).
    """

    def __init__(
        self,
        paths: Sequence[Path],
        targets: Sequence[int] | NDArray[Any],
        labels: Sequence[str],
        *,
        where: str,
        on_error: str = "raise",
        shape: tuple[int, int, int] | None = None,
        resize: bool = False,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ValidationError(f"expected raise or skip, got {on_error!r}", field="on_error")
        self.paths = list(paths)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.labels = tuple(labels)
        self.where = where
        self.on_error = on_error
        self.resize = resize
        self.max_pixels = max_pixels
        self._bad: dict[int, str] = {}
        if not self.paths:
            raise DataError(f"{where}: no {'/'.join(IMAGE_SUFFIXES)} images found")
        self.shape = shape if shape is not None else self._probe()

    def _probe(self) -> tuple[int, int, int]:
        for i, path in enumerate(self.paths):
            try:
                image = decode_image(path.read_bytes(), where=str(path), max_pixels=self.max_pixels)
            except (BadImageError, OSError) as err:
                self._fail(i, err)
                continue
            return (int(image.shape[0]), int(image.shape[1]), int(image.shape[2]))
        raise DataError(f"{self.where}: none of the {len(self.paths)} images could be read")

    def _fail(self, index: int, err: Exception) -> None:
        if self.on_error == "raise":
            if isinstance(err, BadImageError):
                raise err
            raise BadImageError(f"cannot read: {err}", path=str(self.paths[index])) from None
        self._bad[index] = str(err)

    @property
    def skipped(self) -> int:
        return len(self._bad)

    @property
    def bad_files(self) -> dict[str, str]:
        """Path -> reason of each file skipped so far."""
        return {str(self.paths[i]): reason for i, reason in sorted(self._bad.items())}

    def read(self, indices: NDArray[np.int64]) -> tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.int64]]:
        h, w, c = self.shape
        out = np.empty((len(indices), h, w, c), dtype=np.uint8)
        kept: list[int] = []
        for i in indices.tolist():
            if i in self._bad:
                continue
            path = self.paths[i]
            try:
                out[len(kept)] = decode_image(
                    path.read_bytes(),
                    where=str(path),
                    channels=c,
                    size=(h, w),
                    resize=self.resize,
                    max_pixels=self.max_pixels,
                )
            except (BadImageError, OSError) as err:
                self._fail(i, err)
                continue
            kept.append(i)
        idx = np.asarray(kept, dtype=np.int64)
        return out[: len(kept)], self.targets[idx], idx

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for path, label in zip(self.paths, self.targets.tolist(), strict=True):
            st = path.stat()
            h.update(f"{path}\0{label}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return "sha256:" + h.hexdigest()[:32]


def _idx_pair(folder: Path, split: str) -> tuple[Path, Path] | None:
    found = []
    for stem in _IDX[split]:
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                found.append(candidate)
                break
    return (found[0], found[1]) if len(found) == 2 else None


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def list_images(spec: str | Path) -> tuple[list[Path], list[str | None]]:
    """Image files of a folder (recursively; the class folder's name is each one's label) or of a ``path`` table.

    Returns the paths and, per path, its label name when the layout gives one.
    """
    path = Path(spec)
    if path.is_file():
        return _read_table(path)
    if not path.is_dir():
        raise DatasetNotFoundError(f"{path}: no such file or folder")
    files = _images_under(path)
    labels: list[str | None] = [f.parent.name if f.parent != path else None for f in files]
    return files, labels


def _read_table(path: Path) -> tuple[list[Path], list[str | None]]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        table = pq.read_table(path)
        names = table.column_names
        rows = {c: table.column(c).to_pylist() for c in names if c in ("path", "label")}
    elif suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            names = list(reader.fieldnames or ())
            records = list(reader)
        rows = {c: [r[c] for r in records] for c in names if c in ("path", "label")}
    else:
        raise DataFormatError("expected a folder of images, or a .parquet/.csv table of path,label", path=str(path))
    if "path" not in rows:
        raise DataFormatError(f"no 'path' column (columns: {', '.join(names)})", path=str(path))
    base = path.parent
    paths = [base / str(p) for p in rows["path"]]
    labels = [None if v is None else str(v) for v in rows.get("label", [None] * len(paths))]
    return paths, labels


def open_dataset(
    spec: str | Path,
    *,
    data_dir: Path,
    split: str = "train",
    on_error: str = "raise",
    labels: Sequence[str] | None = None,
    shape: tuple[int, int, int] | None = None,
) -> ImageDataset:
    """The labelled images ``spec`` names (see the module docs for the layouts).

    ``split`` picks ``train`` or ``test`` where the layout has both.
    ``labels`` fixes the class names (a trained model's, when reading test
    data); a label outside them is an error. ``shape`` fixes the image size
    and channels that files must have.
    """
    if split not in _IDX:
        raise ValidationError(f"expected train or test, got {split!r}", field="split")
    path = Path(spec)
    if not path.exists() and not any(sep in str(spec) for sep in "/\\"):
        candidate = data_dir / str(spec)
        if candidate.is_dir() and _idx_pair(candidate, split) is None:
            path = candidate
        else:
            dataset = get_dataset(str(spec))
            if dataset.images is None:
                raise DataError(f"data set {dataset.name!r} holds no images ({dataset.kind})")
            images, targets = dataset.read_images(data_dir, split)  # type: ignore[arg-type]
            names = dataset.images.class_names or tuple(str(i) for i in range(dataset.images.classes))
            return ArrayDataset(images, targets, _check_labels(names, labels, str(spec)), where=f"{spec} ({split})")
    if path.is_dir():
        pair = _idx_pair(path, split)
        if pair is not None:
            return _idx_dataset(pair, labels)
        sub = path / split
        if (path / "train").is_dir() and sub.is_dir():
            path = sub
        elif split == "test" and (path / "train").is_dir():
            raise DatasetNotFoundError(f"{path}: has train/ but no test/ folder")
    if not path.exists():
        raise DatasetNotFoundError(
            f"{spec}: no such file or folder, and no data set of that name in {data_dir}",
            hint="pass a folder of class sub-folders, a path,label table, or a catalogue name such as fashion-mnist",
        )
    files, found = list_images(path)
    if any(n is None for n in found):
        where = next(str(f) for f, n in zip(files, found, strict=True) if n is None)
        raise DataFormatError(
            "an image without a label: expected one sub-folder per class (or a 'label' column)", path=where
        )
    classes = tuple(labels) if labels is not None else tuple(sorted({str(n) for n in found}))
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted({str(n) for n in found} - set(index))
    if unknown:
        raise DataFormatError(f"labels {unknown[:5]} are not among the model's classes {list(classes)}", path=str(path))
    if len(classes) < 2:
        raise DataError(f"{path}: found {len(classes)} class(es); expected at least 2")
    ids = [index[str(n)] for n in found]
    return FileDataset(files, ids, classes, where=str(path), on_error=on_error, shape=shape)


def _check_labels(names: Sequence[str], labels: Sequence[str] | None, where: str) -> tuple[str, ...]:
    if labels is not None and tuple(labels) != tuple(names):
        raise DataError(f"{where}: its classes {list(names)} differ from the model's {list(labels)}")
    return tuple(names)


def _idx_dataset(pair: tuple[Path, Path], labels: Sequence[str] | None) -> ArrayDataset:
    images = read_idx(pair[0], ndim=3)
    targets = read_idx(pair[1], ndim=1)
    if images.dtype != np.uint8:
        raise DataFormatError(f"expected unsigned bytes, found {images.dtype}", path=str(pair[0]))
    n = int(targets.max()) + 1 if len(targets) else 0
    names = tuple(labels) if labels is not None else tuple(str(i) for i in range(n))
    return ArrayDataset(images, targets, names, where=str(pair[0]))
