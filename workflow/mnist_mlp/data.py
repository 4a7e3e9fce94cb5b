"""MNIST: fetch, verify, store once as one compact file, split, and load as tensors."""

from __future__ import annotations

import errno
import gzip
import hashlib
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .constants import N_PIXELS
from .errors import UserFacingError
from .io import atomic_write_bytes

log = logging.getLogger(__name__)

# MD5 of the uncompressed IDX files as published by LeCun et al. The .gz bytes of a copy may
# differ (other gzip settings), so the decompressed content is what identifies the data.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Prefix of the download's scratch folder beside the dataset; a killed job leaves one behind,
# which the next download removes.
SCRATCH_PREFIX = ".mnist-download-"


def disk_full(err: OSError, folder) -> UserFacingError:
    return UserFacingError(
        f"no space left on the disk holding {folder} ({err}). Free some space there (MNIST "
        "needs about 120 MB while it is prepared) and run the workflow again."
    )


def copy_local_mnist(mnist_dir: Path, raw_dir: Path) -> None:
    """Copy (decompressing where needed) the four IDX files from ``mnist_dir`` into ``raw_dir``."""
    if not mnist_dir.is_dir():
        raise UserFacingError(
            f"mnist_dir '{mnist_dir}' is not a folder. Set config key mnist_dir to the folder "
            'holding the four MNIST IDX files (.gz or uncompressed), or to "" to download.'
        )
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name in MNIST_MD5:
        plain, packed = mnist_dir / name, mnist_dir / f"{name}.gz"
        if plain.is_file():
            shutil.copyfile(plain, raw_dir / name)
        elif packed.is_file():
            try:
                with gzip.open(packed, "rb") as src, open(raw_dir / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (OSError, EOFError) as err:
                if getattr(err, "errno", None) == errno.ENOSPC:  # writing, not reading, failed
                    raise disk_full(err, raw_dir) from err
                raise UserFacingError(
                    f"{packed} is not a readable gzip file ({err}). Replace it with an intact copy "
                    f"of {name}.gz (uncompressed MD5 {MNIST_MD5[name]})."
                ) from err
        else:
            raise UserFacingError(
                f"MNIST file {name} (or {name}.gz) is missing from mnist_dir '{mnist_dir}'. "
                'Put the four IDX files there, or set mnist_dir to "" to download them.'
            )


def download_mnist(root: Path) -> None:
    """Download through torchvision (its mirrors and .gz checksums) into ``root/MNIST/raw``."""
    from torchvision.datasets import MNIST

    try:
        for train in (True, False):
            MNIST(str(root), train=train, download=True)
    except Exception as err:  # torchvision raises RuntimeError/URLError/OSError by mirror
        raise UserFacingError(
            f"Downloading MNIST failed ({err}). Check the network, or download the four IDX files "
            "by hand and set config key mnist_dir to their folder."
        ) from err


def verify_raw_files(raw_dir: Path, expected_md5: dict[str, str] = MNIST_MD5) -> None:
    for name, expected in expected_md5.items():
        actual = md5sum(raw_dir / name)
        if actual != expected:
            raise UserFacingError(
                f"MNIST file {name} has MD5 {actual}, expected {expected} (uncompressed). "
                "The file is truncated or altered: replace it with the published original."
            )


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the format of the MNIST originals) into a uint8 array."""
    raw = path.read_bytes()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def download_mnist_stage(
    output: Path, mnist_dir: str | os.PathLike | None, expected_md5: dict[str, str] = MNIST_MD5
) -> None:
    """Rule download_mnist: fetch (download or local copy), verify by MD5 and store MNIST as
    one ``.npz``. ``expected_md5``: the uncompressed files' checksums (the published ones; the
    tests pass those of a synthetic MNIST-shaped dataset).

    The file holds uint8 ``train_images`` (60000, 28, 28), ``train_labels``, and the official
    ``test_images``/``test_labels`` (10000), which stay apart until the final evaluation.
    """
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    for stale in output.parent.glob(f"{SCRATCH_PREFIX}*"):  # left by a killed download
        shutil.rmtree(stale, ignore_errors=True)
    try:
        _download_mnist(output, mnist_dir, expected_md5)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise disk_full(err, output.parent) from err
        raise


def _download_mnist(output: Path, mnist_dir, expected_md5) -> None:
    with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, dir=output.parent) as tmp:
        root = Path(tmp)
        raw_dir = root / "MNIST" / "raw"  # where torchvision's MNIST looks for extracted files
        if mnist_dir:
            log.info("copying MNIST from %s", mnist_dir)
            copy_local_mnist(Path(mnist_dir), raw_dir)
        else:
            log.info("downloading MNIST through torchvision")
            download_mnist(root)
        verify_raw_files(raw_dir, expected_md5)
        arrays = {
            "train_images": read_idx(raw_dir / "train-images-idx3-ubyte"),
            "train_labels": read_idx(raw_dir / "train-labels-idx1-ubyte"),
            "test_images": read_idx(raw_dir / "t10k-images-idx3-ubyte"),
            "test_labels": read_idx(raw_dir / "t10k-labels-idx1-ubyte"),
        }
        partial = root / "mnist.npz"
        save_npz(partial, arrays)
        digest = sha256sum(partial)
        if expected_md5 is MNIST_MD5 and digest != MNIST_NPZ_SHA256:
            raise UserFacingError(
                f"the dataset file made from the verified MNIST files has SHA-256 {digest}, "
                f"not the workflow's {MNIST_NPZ_SHA256}: numpy wrote it differently. Use the "
                "numpy that requirements.txt pins (make run sets up that environment)."
            )
        os.replace(partial, output)  # never leave a half-written dataset at the output path
    log.info("stored %s: %s", output, {k: v.shape for k, v in arrays.items()})


def save_npz(path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` with fixed timestamps inside the zip: the same arrays give the same bytes,
    so a recreated dataset file with the same content reruns nothing downstream (Snakemake
    compares checksums of inputs up to the default profile's max-checksum-file-size)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.ascontiguousarray(array), allow_pickle=False)


MNIST_ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")
# The dataset file has the same bytes on every run (the published MNIST, fixed zip times), so
# its SHA-256 is a constant of the code: a digest written beside the file could be replaced
# with it. Every stage that reads the file checks it.
MNIST_NPZ_SHA256 = "c3135addf2ec1ba464ca29b553245d68898413529a4af7242e00e9a372cbe51c"
TRUSTED_DATASETS = {MNIST_NPZ_SHA256}  # the tests add their synthetic dataset's digest
_verified: dict[tuple, str] = {}  # (path, size, mtime, inode) -> digest, within one process


def sha256sum(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_dataset(path) -> None:
    """Refuse a dataset file that is not the verified one (replaced, edited or rebuilt from other
    files after the download stage made it), naming the fix."""
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key not in _verified:
        _verified[key] = sha256sum(path)
    digest = _verified[key]
    if digest not in TRUSTED_DATASETS:
        raise UserFacingError(
            f"{path} is not the verified MNIST dataset: its SHA-256 is {digest[:16]}..., the "
            f"workflow's is {MNIST_NPZ_SHA256[:16]}... It was replaced or changed after the "
            "download stage made it. Delete it and run the workflow again: download_mnist makes "
            "it anew from the MNIST files (checked by their MD5s), and no job reads the other "
            "file."
        )


def load_mnist(path: str | os.PathLike, verify: bool = True) -> dict[str, np.ndarray]:
    """The dataset file's four arrays, after ``verify_dataset``; a damaged file is named, with
    what to do."""
    if verify and Path(path).exists():
        verify_dataset(path)
    try:
        with np.load(path) as npz:
            return {key: npz[key] for key in MNIST_ARRAYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        if isinstance(err, OSError) and not Path(path).exists():
            raise
        raise UserFacingError(
            f"the dataset file {path} is damaged ({type(err).__name__}: {err}). Delete it and "
            "run the workflow again: download_mnist recreates it and the jobs that use it rerun."
        ) from err


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int):
    """Seeded, stratified split of the training images into (train, test) index arrays, sorted."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    train, test = train_test_split(
        indices, test_size=test_fraction, stratify=labels, random_state=seed
    )
    return np.sort(train), np.sort(test)


def save_indices(path: str | os.PathLike, indices: np.ndarray) -> None:
    atomic_write_bytes(path, lambda handle: np.save(handle, indices.astype(np.int64)))


def split_train_test_stage(mnist, train_path, test_path, test_fraction: float, seed: int):
    """Rule split_train_test: the seeded, stratified split of the training images, saved as
    the row indices of each part."""
    labels = load_mnist(mnist)["train_labels"]
    train, test = stratified_split(labels, test_fraction, seed)
    save_indices(train_path, train)
    save_indices(test_path, test)
    log.info("train part: %d images, test part: %d images", len(train), len(test))
    return train, test


def images_to_tensor(images: np.ndarray, device="cpu"):
    """uint8 (n, 28, 28) images -> float32 (n, 784) tensor scaled to [0, 1], on ``device``."""
    import torch

    flat = torch.from_numpy(np.ascontiguousarray(images).reshape(len(images), N_PIXELS))
    return flat.to(device=device, dtype=torch.float32).div_(255.0)


def labels_to_tensor(labels: np.ndarray, device="cpu"):
    import torch

    return torch.from_numpy(labels.astype(np.int64)).to(device)


def load_part(mnist, indices_path=None, device="cpu", official_test=False):
    """Images and labels of one part of MNIST as (X, y) tensors on ``device``.

    ``mnist`` is the dataset artifact's path, or its arrays from ``load_mnist`` when a job takes
    several parts (read the file once). ``indices_path`` (a saved index array) selects rows of
    the 60,000 training images; ``official_test`` selects the official 10,000 test images.
    """
    if not isinstance(mnist, dict):
        mnist = load_mnist(mnist)
    prefix = "test" if official_test else "train"
    images, labels = mnist[f"{prefix}_images"], mnist[f"{prefix}_labels"]
    if indices_path is not None:
        rows = np.load(indices_path)
        images, labels = images[rows], labels[rows]
    return images_to_tensor(images, device), labels_to_tensor(labels, device)
