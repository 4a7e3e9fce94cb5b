"""The data stage: fetch, verify, store, split, load; and what a damaged source or a full disk
makes of it. Fast tier on a synthetic MNIST; the checks of the real one are marked mnist."""

import errno
import gzip
import os
import shutil

import numpy as np
import pytest
import torch

from mnist_mlp import data, io
from mnist_mlp.data import MNIST_MD5, download_mnist_stage, load_mnist, load_part, stratified_split
from mnist_mlp.errors import UserFacingError
from mnist_mlp.io import atomic_write_bytes, read_json, write_json, write_text


def _copy(folder, destination):
    shutil.copytree(folder, destination)
    return destination


def test_the_dataset_file_holds_the_four_arrays_and_is_reproducible(
    synthetic_mnist, synthetic_npz, tmp_path
):
    folder, md5 = synthetic_mnist
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    download_mnist_stage(first, folder, expected_md5=md5)
    download_mnist_stage(second, folder, expected_md5=md5)
    # same bytes: a recreated dataset reruns nothing downstream (checksums, not times)
    assert first.read_bytes() == second.read_bytes()
    arrays = load_mnist(first)
    assert (
        arrays["train_images"].shape == (2000, 28, 28) and arrays["train_images"].dtype == np.uint8
    )
    assert arrays["test_labels"].shape == (500,)
    assert first.read_bytes() == synthetic_npz.read_bytes()  # the trusted synthetic dataset


def test_every_stage_refuses_a_dataset_that_is_not_the_verified_one(synthetic_npz, tmp_path):
    """A valid dataset file with other content (the training labels permuted) put in place of
    the verified one: each stage that reads it stops, naming the file and the fix, before any
    work."""
    from conftest import Paths

    from mnist_mlp import final, search
    from mnist_mlp.data import save_npz, split_train_test_stage

    arrays = load_mnist(synthetic_npz)
    arrays["train_labels"] = np.random.default_rng(0).permutation(arrays["train_labels"])
    swapped = tmp_path / "mnist.npz"
    save_npz(swapped, arrays)
    np.save(tmp_path / "rows.npy", np.arange(100))
    trial = {"trial": "t0000", "Nh1": 20, "Nh2": 10, "dropout": 0.0, "optimizer": "Adam"}
    trial |= {"lr": 1e-3, "L2": 0.0}
    settings = {"seed": 0, "device": "cpu", "folds": 2, "patience": 2, "max_epochs": 1}
    settings |= {"batch_size": 64}
    stages = {
        "split": lambda: split_train_test_stage(
            swapped, tmp_path / "a.npy", tmp_path / "b.npy", 0.2, 0
        ),
        "search": lambda: search.cross_validate_stage(
            swapped, tmp_path / "rows.npy", Paths(cv=tmp_path / "cv.json"), trial, settings, 1
        ),
        "final": lambda: final.retrain_stage(
            swapped, tmp_path / "rows.npy", tmp_path / "rows.npy", Paths(), trial, settings, 1
        ),
    }
    for name, stage in stages.items():
        with pytest.raises(UserFacingError, match="is not the verified MNIST dataset") as err:
            stage()
        assert str(swapped) in str(err.value) and "Delete it and run the workflow again" in str(
            err.value
        ), name
    assert not (tmp_path / "cv.json").exists() and not (tmp_path / "a.npy").exists()


def test_load_part_scales_pixels_to_the_unit_interval(synthetic_npz, tmp_path):
    rows = np.array([0, 5, 7])
    np.save(tmp_path / "rows.npy", rows)
    X, y = load_part(synthetic_npz, tmp_path / "rows.npy")
    assert tuple(X.shape) == (3, 784)
    images = load_mnist(synthetic_npz)["train_images"][rows].reshape(3, 784)
    assert X.numpy().tolist() == (images.astype(np.float32) / np.float32(255)).tolist()
    assert float(X.max()) == 1.0 and float(X.min()) == 0.0  # 255 is 1 exactly, not 255/256
    assert y.tolist() == load_mnist(synthetic_npz)["train_labels"][rows].tolist()


def test_the_split_is_seeded_stratified_disjoint_and_complete(synthetic_npz, tmp_path):
    """The split stage on the synthetic dataset (2,000 images, 200 of each digit): every
    image in exactly one part, each digit in the test part in its share, the same parts for
    the same seed, saved as the sorted int64 row indices the later stages read."""
    from mnist_mlp.data import split_train_test_stage

    paths = (tmp_path / "split" / "train.npy", tmp_path / "split" / "test.npy")
    train, test = split_train_test_stage(synthetic_npz, *paths, 0.15, seed=3)
    for path, part in zip(paths, (train, test), strict=True):
        saved = np.load(path)
        assert saved.dtype == np.int64 and saved.tolist() == part.tolist()
        assert np.all(np.diff(part) > 0)  # sorted, no row twice
    assert len(test) == 300 and len(train) == 1700
    assert sorted([*train, *test]) == list(range(2000))
    labels = load_mnist(synthetic_npz)["train_labels"]
    assert np.bincount(labels[test]).tolist() == [30] * 10
    again = stratified_split(labels, 0.15, seed=3)
    other = stratified_split(labels, 0.15, seed=4)
    assert np.array_equal(again[1], test) and not np.array_equal(other[1], test)


def test_the_official_test_images_and_the_device_asked_for(synthetic_npz, tmp_path):
    """``official_test`` gives the 500 official test images, not training rows; the tensors
    go to the device asked for (meta here: torch's device without memory, as a GPU would be
    another device), the labels as int64."""
    from mnist_mlp.data import images_to_tensor, labels_to_tensor

    arrays = load_mnist(synthetic_npz)
    X, y = load_part(synthetic_npz, None, official_test=True)
    assert tuple(X.shape) == (500, 784)
    assert y.tolist() == arrays["test_labels"].tolist()
    assert (
        X.numpy().tolist()
        == (arrays["test_images"].reshape(500, 784).astype(np.float32) / np.float32(255)).tolist()
    )
    np.save(tmp_path / "rows.npy", np.array([3, 1]))
    X, y = load_part(arrays, tmp_path / "rows.npy", device="meta")
    assert (X.device.type, X.dtype, tuple(X.shape)) == ("meta", torch.float32, (2, 784))
    assert (y.device.type, y.dtype) == ("meta", torch.int64)
    # without a device (the classify command): the CPU
    assert images_to_tensor(arrays["test_images"][:2]).device.type == "cpu"
    assert labels_to_tensor(arrays["test_labels"][:2]).dtype == torch.int64


def test_the_dataset_files_layout_is_fixed(synthetic_mnist, tmp_path):
    """What the published SHA-256 of the real dataset file (MNIST_NPZ_SHA256) rests on: the
    four arrays in order, stored uncompressed with zip64 headers and the fixed time; a change
    here changes that digest, and the download stage would refuse the real MNIST."""
    import zipfile

    folder, md5 = synthetic_mnist
    download_mnist_stage(tmp_path / "mnist.npz", folder, expected_md5=md5)
    with zipfile.ZipFile(tmp_path / "mnist.npz") as archive:
        members = archive.infolist()
    assert [m.filename for m in members] == [f"{name}.npy" for name in data.MNIST_ARRAYS]
    for member in members:
        assert member.date_time == (1980, 1, 1, 0, 0, 0)
        assert member.compress_type == zipfile.ZIP_STORED
        assert member.extract_version == zipfile.ZIP64_VERSION


def test_the_scratch_folder_is_beside_the_dataset_for_the_next_download_to_remove(
    synthetic_mnist, tmp_path, monkeypatch
):
    """The files are prepared in a folder named SCRATCH_PREFIX... beside the dataset (made,
    with its parents, where missing): one that a killed job leaves is found and removed by
    the next download; none is left after a download."""
    folder, md5 = synthetic_mnist
    used = []
    copy = data.copy_local_mnist

    def recording(mnist_dir, raw_dir):
        used.append(raw_dir)
        copy(mnist_dir, raw_dir)

    monkeypatch.setattr(data, "copy_local_mnist", recording)
    output = tmp_path / "results" / "data" / "mnist.npz"
    download_mnist_stage(output, folder, expected_md5=md5)
    (raw_dir,) = used
    scratch = raw_dir.relative_to(output.parent).parts[0]
    assert scratch.startswith(data.SCRATCH_PREFIX)
    assert sorted(p.name for p in output.parent.iterdir()) == ["mnist.npz"]


def test_a_missing_dataset_file_is_not_called_damaged(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_mnist(tmp_path / "mnist.npz", verify=False)


@pytest.mark.parametrize("fault", ["truncated", "altered"])
def test_a_damaged_source_file_is_named_with_its_checksum(synthetic_mnist, tmp_path, fault):
    folder, md5 = synthetic_mnist
    local = _copy(folder, tmp_path / "mnist")
    name = "train-labels-idx1-ubyte"
    with gzip.open(local / f"{name}.gz", "rb") as handle:
        content = bytearray(handle.read())
    (local / f"{name}.gz").unlink()
    if fault == "truncated":
        content = content[:-100]
    else:
        content[-1] ^= 0xFF
    (local / name).write_bytes(bytes(content))  # uncompressed copies are accepted too
    output = tmp_path / "out" / "mnist.npz"
    with pytest.raises(UserFacingError, match=f"{name} has MD5 .* expected {md5[name]}"):
        download_mnist_stage(output, local, expected_md5=md5)
    assert not output.exists()
    assert list(output.parent.iterdir()) == []  # no partial or scratch files left behind


def test_a_missing_file_or_folder_is_named(synthetic_mnist, tmp_path):
    folder, md5 = synthetic_mnist
    local = _copy(folder, tmp_path / "mnist")
    (local / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(UserFacingError, match="t10k-images-idx3-ubyte.*missing"):
        download_mnist_stage(tmp_path / "mnist.npz", local, expected_md5=md5)
    with pytest.raises(UserFacingError, match="not a folder"):
        download_mnist_stage(tmp_path / "mnist.npz", tmp_path / "nowhere", expected_md5=md5)


def test_a_corrupt_gzip_is_named(synthetic_mnist, tmp_path):
    folder, md5 = synthetic_mnist
    local = _copy(folder, tmp_path / "mnist")
    packed = local / "t10k-labels-idx1-ubyte.gz"
    packed.write_bytes(packed.read_bytes()[:40])
    with pytest.raises(UserFacingError, match="t10k-labels-idx1-ubyte.gz is not a readable gzip"):
        download_mnist_stage(tmp_path / "mnist.npz", local, expected_md5=md5)


def test_a_full_disk_is_reported_as_a_full_disk(synthetic_mnist, tmp_path, monkeypatch):
    folder, md5 = synthetic_mnist

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(data.shutil, "copyfileobj", no_space)
    with pytest.raises(UserFacingError, match="no space left on the disk holding") as caught:
        download_mnist_stage(tmp_path / "mnist.npz", folder, expected_md5=md5)
    assert "gzip" not in str(caught.value) and "Replace" not in str(caught.value)
    assert f"disk holding {tmp_path}/{data.SCRATCH_PREFIX}" in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # no dataset, no scratch folder left behind
    monkeypatch.undo()

    # the disk fills while the dataset file is written: named too, the folder and the cause
    monkeypatch.setattr(data, "save_npz", no_space)
    with pytest.raises(UserFacingError, match="no space left on the disk holding") as caught:
        download_mnist_stage(tmp_path / "mnist.npz", folder, expected_md5=md5)
    assert f"disk holding {tmp_path} (" in str(caught.value)
    assert "No space left on device" in str(caught.value)
    assert list(tmp_path.iterdir()) == []

    def no_permission(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(data, "save_npz", no_permission)  # any other error is not a full disk
    with pytest.raises(PermissionError):
        download_mnist_stage(tmp_path / "mnist.npz", folder, expected_md5=md5)

    def write(handle):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(UserFacingError, match=f"disk holding {tmp_path} while writing out.json"):
        atomic_write_bytes(tmp_path / "out.json", write)
    assert list(tmp_path.glob(".out.json*")) == []


def test_a_killed_download_leaves_nothing_the_next_one_keeps(synthetic_mnist, tmp_path):
    folder, md5 = synthetic_mnist
    stale = tmp_path / f"{data.SCRATCH_PREFIX}abc123" / "MNIST" / "raw"
    stale.mkdir(parents=True)
    (stale / "train-images-idx3-ubyte").write_bytes(b"half")
    download_mnist_stage(tmp_path / "mnist.npz", folder, expected_md5=md5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist.npz"]


def test_a_damaged_dataset_file_is_named_with_the_fix(synthetic_npz, tmp_path):
    damaged = tmp_path / "mnist.npz"
    damaged.write_bytes(synthetic_npz.read_bytes()[:5000])
    with pytest.raises(UserFacingError, match=f"{damaged} is not the verified .* Delete it"):
        load_mnist(damaged)  # what a stage meets: its bytes are not the verified ones
    with pytest.raises(UserFacingError, match=f"{damaged} is damaged .* Delete it"):
        load_mnist(damaged, verify=False)


def test_a_damaged_result_is_named_moved_aside_and_recomputed_next(tmp_path):
    result = tmp_path / "t0001.json"
    write_json(result, {"trial": "t0001", "mean_loss": 0.1})
    assert read_json(result)["trial"] == "t0001"
    result.write_text(result.read_text()[:20])
    with pytest.raises(UserFacingError, match="t0001.json is damaged .* Run the workflow again"):
        read_json(result)
    assert not result.exists() and (tmp_path / "t0001.json.damaged").exists()


def test_outputs_get_the_permissions_of_an_ordinary_file(tmp_path):
    """Not mkstemp's private 0600: on a shared cluster the group reads the results."""
    previous = os.umask(0o002)  # a group-shared project folder
    try:
        io._umask.cache_clear()
        write_text(tmp_path / "ranking.tsv", "x\n")
        (tmp_path / "plain.txt").write_text("x\n")
        mode = (tmp_path / "ranking.tsv").stat().st_mode & 0o777
        assert mode == (tmp_path / "plain.txt").stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(previous)
        io._umask.cache_clear()


@pytest.mark.mnist
def test_the_real_mnist_is_verified_and_stored(mnist_npz):
    mnist = load_mnist(mnist_npz)
    assert mnist["train_images"].shape == (60_000, 28, 28)
    assert mnist["test_images"].shape == (10_000, 28, 28)
    assert set(np.unique(mnist["train_labels"])) == set(range(10))
    counts = np.bincount(mnist["train_labels"]).tolist()
    from mnist_mlp.constants import MNIST_TRAIN_CLASS_COUNTS

    assert tuple(counts) == MNIST_TRAIN_CLASS_COUNTS  # the published counts
    # the MD5 constants are those of the real files' contents (the copy here is gzipped)
    import gzip
    import hashlib

    from conftest import MNIST_DIR

    for name, expected in MNIST_MD5.items():
        gz = MNIST_DIR / f"{name}.gz"
        content = (
            gzip.decompress(gz.read_bytes()) if gz.exists() else (MNIST_DIR / name).read_bytes()
        )
        assert hashlib.md5(content).hexdigest() == expected, name
    assert data.sha256sum(mnist_npz) == data.MNIST_NPZ_SHA256  # the dataset file's constant


@pytest.mark.mnist
def test_the_real_split_is_disjoint_stratified_and_seeded(mnist_npz):
    labels = load_mnist(mnist_npz)["train_labels"]
    train, test = stratified_split(labels, 0.15, seed=0)
    assert len(train) == 51_000 and len(test) == 9_000
    assert not set(train) & set(test)
    overall = np.bincount(labels) / len(labels)
    assert np.abs(np.bincount(labels[test]) / len(test) - overall).max() < 1e-3
    again, _ = stratified_split(labels, 0.15, seed=0)
    other, _ = stratified_split(labels, 0.15, seed=1)
    assert np.array_equal(train, again) and not np.array_equal(train, other)
