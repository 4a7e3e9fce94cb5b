import gzip
import shutil

import numpy as np
import pytest

from mnist_mlp.data import (
    MNIST_MD5,
    load_mnist,
    load_part,
    prepare_mnist,
    stratified_split,
)
from mnist_mlp.errors import UserFacingError


def test_dataset_artifact_holds_the_real_mnist(mnist_npz):
    mnist = load_mnist(mnist_npz)
    assert mnist["train_images"].shape == (60_000, 28, 28)
    assert mnist["test_images"].shape == (10_000, 28, 28)
    assert mnist["train_images"].dtype == np.uint8
    assert set(np.unique(mnist["train_labels"])) == set(range(10))
    assert np.bincount(mnist["train_labels"]).tolist()[:3] == [5923, 6742, 5958]  # published


def test_load_part_scales_pixels_to_unit_interval(mnist_npz, tmp_path):
    rows = np.array([0, 5, 7])
    np.save(tmp_path / "rows.npy", rows)
    X, y = load_part(mnist_npz, tmp_path / "rows.npy")
    assert tuple(X.shape) == (3, 784)
    assert float(X.min()) == 0.0 and float(X.max()) == 1.0
    assert y.tolist() == load_mnist(mnist_npz)["train_labels"][rows].tolist()


def test_split_is_disjoint_stratified_and_seeded(mnist_npz):
    labels = load_mnist(mnist_npz)["train_labels"]
    train, test = stratified_split(labels, 0.15, seed=0)
    assert len(train) == 51_000 and len(test) == 9_000
    assert not set(train) & set(test)
    assert len(set(train) | set(test)) == 60_000
    overall = np.bincount(labels) / len(labels)
    assert np.abs(np.bincount(labels[test]) / len(test) - overall).max() < 1e-3
    again, _ = stratified_split(labels, 0.15, seed=0)
    other, _ = stratified_split(labels, 0.15, seed=1)
    assert np.array_equal(train, again)
    assert not np.array_equal(train, other)


def _copy_of(mnist_dir, destination):
    shutil.copytree(mnist_dir, destination)
    return destination


def test_a_truncated_file_is_rejected_with_its_checksum(mnist_dir, tmp_path):
    local = _copy_of(mnist_dir, tmp_path / "mnist")
    name = "train-labels-idx1-ubyte"
    with gzip.open(local / f"{name}.gz", "rb") as handle:
        content = handle.read()
    (local / f"{name}.gz").unlink()
    (local / name).write_bytes(content[:-100])  # uncompressed copies are accepted too
    output = tmp_path / "out" / "mnist.npz"
    output.parent.mkdir()
    with pytest.raises(UserFacingError, match=f"{name}.*{MNIST_MD5[name]}"):
        prepare_mnist(output, local)
    assert not output.exists()
    assert list(output.parent.iterdir()) == []  # no partial files left behind


def test_a_missing_file_or_folder_is_named(mnist_dir, tmp_path):
    local = _copy_of(mnist_dir, tmp_path / "mnist")
    (local / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(UserFacingError, match="t10k-images-idx3-ubyte"):
        prepare_mnist(tmp_path / "mnist.npz", local)
    with pytest.raises(UserFacingError, match="not a folder"):
        prepare_mnist(tmp_path / "mnist.npz", tmp_path / "nowhere")
