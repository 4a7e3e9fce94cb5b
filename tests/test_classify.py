"""The classify command: images of any kind brought to MNIST's format, the probabilities, the
command line and its errors; then a small network trained on real MNIST classifying real
test images written as PNG and IDX files."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mnist_mlp.classify import (
    _fit_to_mnist_box,
    classify,
    format_line,
    load_images,
    load_winner,
    main,
    read_images,
)
from mnist_mlp.data import images_to_tensor, load_mnist
from mnist_mlp.errors import UserFacingError
from mnist_mlp.model import MLP, save_model

REPO = Path(__file__).resolve().parents[1]
# One output line: "name: digit 7  (p=0.998)  0:0.000 1:0.000 ... 9:0.001[  [inverted: ...]]"
LINE = re.compile(
    r"^(?P<name>\S.*?): +digit (?P<digit>\d)  \(p=(?P<p>[01]\.\d{3})\)  "
    r"(?P<probabilities>(?:\d:[01]\.\d{3} ){9}\d:[01]\.\d{3})"
    r"(?P<inverted>  \[inverted: dark digit on light background\])?"
    r"(?P<note>  \[(?:blank image|uncertain|not a digit): [^]]+\])?$"
)
TRIAL = {
    "trial": "t0000",
    "Nh1": 128,
    "Nh2": 64,
    "dropout": 0.1,
    "optimizer": "Adam",
    "lr": 1e-3,
    "L2": 1e-5,
}


def parse(stdout: str) -> list[dict]:
    """The CLI's lines as dicts (name, digit, p, probabilities, inverted); fails on any other."""
    rows = []
    for line in stdout.splitlines():
        match = LINE.match(line)
        assert match, f"unexpected output line: {line!r}"
        probabilities = [float(item.split(":")[1]) for item in match["probabilities"].split()]
        rows.append(
            {
                "name": match["name"],
                "digit": int(match["digit"]),
                "p": float(match["p"]),
                "probabilities": probabilities,
                "inverted": match["inverted"] is not None,
            }
        )
    return rows


def synthetic_digit(seed: int = 0) -> np.ndarray:
    """A uint8 28x28 white-on-black "7" with varied grey levels (so that exactness means
    something): a bar and a diagonal stroke, strokes 2 pixels wide, inside a 20x20 box."""
    rng = np.random.default_rng(seed)
    image = np.zeros((28, 28), dtype=np.uint8)
    image[5:7, 6:22] = rng.integers(120, 256, size=(2, 16))
    for row in range(7, 25):
        col = 21 - (row - 7) * 10 // 17
        image[row, col - 1 : col + 1] = rng.integers(120, 256, size=2)
    return image


def write_idx(path, images: np.ndarray, compress: bool = False) -> None:
    """An IDX file of uint8 ``images`` (any number of dimensions), gzipped if ``compress``."""
    header = bytes([0, 0, 0x08, images.ndim]) + b"".join(
        size.to_bytes(4, "big") for size in images.shape
    )
    raw = header + np.ascontiguousarray(images, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def ink_box(image: np.ndarray, threshold: int = 64) -> tuple[int, int]:
    """Height and width of the pixels above ``threshold``."""
    rows, cols = np.nonzero(image > threshold)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    image = image.astype(float)
    total = image.sum()
    return (
        (image.sum(axis=1) * np.arange(28)).sum() / total,
        (image.sum(axis=0) * np.arange(28)).sum() / total,
    )


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory):
    """A small untrained network saved as the workflow saves one: its path."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_model(path, MLP(32, 16), {**TRIAL, "Nh1": 32, "Nh2": 16}, {"official_test_accuracy": 0.1})
    return path


# --- image files -> MNIST format -------------------------------------------------------------


def test_grey_png_of_28x28_is_read_exactly(tmp_path):
    digit = synthetic_digit()
    Image.fromarray(digit, mode="L").save(tmp_path / "digit.png")
    images, inverted = read_images(tmp_path / "digit.png")
    assert images.shape == (1, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[0], digit)
    assert inverted.tolist() == [False]
    tensor = load_images(tmp_path / "digit.png")
    assert tensor.shape == (1, 784) and tensor.dtype == torch.float32
    assert torch.equal(tensor, images_to_tensor(digit[None]))
    assert 0.0 <= tensor.min() and tensor.max() <= 1.0


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "P", "I;16"])
def test_other_modes_give_the_grey_levels(tmp_path, mode):
    digit = synthetic_digit()
    if mode == "I;16":  # 16-bit grey PNG
        image = Image.fromarray(digit.astype(np.uint16) * 257)
    else:
        image = Image.fromarray(digit, mode="L").convert(mode)  # opaque alpha, grey palette
    image.save(tmp_path / "digit.png")
    np.testing.assert_array_equal(read_images(tmp_path / "digit.png")[0][0], digit)


@pytest.mark.parametrize("stroke", [0, 255], ids=["black-strokes", "white-strokes"])
def test_transparent_background_contrasts_with_the_strokes(tmp_path, stroke):
    """A drawing exported with a transparent canvas: the ink is in the alpha channel."""
    digit = synthetic_digit()
    rgba = np.zeros((28, 28, 4), dtype=np.uint8)
    rgba[..., :3] = stroke
    rgba[..., 3] = digit
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "drawing.png")
    images, inverted = read_images(tmp_path / "drawing.png")
    np.testing.assert_allclose(images[0], digit, atol=1)
    assert inverted.tolist() == [stroke == 0]


def test_dark_digit_on_light_background_is_inverted(tmp_path):
    digit = synthetic_digit()
    Image.fromarray(255 - digit, mode="L").convert("RGB").save(tmp_path / "paper.png")
    images, inverted = read_images(tmp_path / "paper.png")
    np.testing.assert_array_equal(images[0], digit)
    assert inverted.tolist() == [True]


@pytest.mark.parametrize(
    ("shape", "dark_on_light"), [((100, 50), False), ((45, 130), True)], ids=["tall", "wide"]
)
def test_other_sizes_fit_a_20x20_box_centred_by_mass(tmp_path, shape, dark_on_light):
    """Aspect ratio kept (a 2:1 stroke stays 2:1), digit scaled to fit 20x20, centre of mass at
    the centre; a grey background level is removed."""
    height, width = shape
    canvas = np.full(shape, 40, dtype=np.uint8)  # a dark grey background, not black
    top, left = height // 5, width // 3
    stroke_h, stroke_w = (60, 30) if height > width else (15, 30)
    canvas[top : top + stroke_h, left : left + stroke_w] = 230
    if dark_on_light:
        canvas = 255 - canvas
    Image.fromarray(canvas, mode="L").save(tmp_path / "digit.png")
    images, inverted = read_images(tmp_path / "digit.png")
    image = images[0]
    assert image.shape == (28, 28)
    assert inverted.tolist() == [dark_on_light]
    box = ink_box(image)
    assert max(box) == 20
    assert abs(box[0] / box[1] - stroke_h / stroke_w) < 0.15
    assert np.allclose(centre_of_mass(image), 14.0, atol=0.6)
    assert image[0].max() == 0 and image[:, 0].max() == 0  # background brought to black


def test_jpeg_photo_of_a_dark_digit(tmp_path):
    digit = synthetic_digit()
    photo = Image.fromarray(255 - digit, mode="L").resize((112, 112), Image.Resampling.BICUBIC)
    photo.convert("RGB").save(tmp_path / "photo.jpg", quality=85)
    images, inverted = read_images(tmp_path / "photo.jpg")
    assert inverted.tolist() == [True]
    assert max(ink_box(images[0])) == 20
    # The digit as the same fit places it from the 28x28 original, up to JPEG and resampling.
    reference = np.rint(_fit_to_mnist_box(digit.astype(float)))
    assert np.minimum(images[0], reference).sum() / reference.sum() > 0.75


def test_blank_image_gives_a_black_field(tmp_path):
    Image.new("L", (50, 40), 255).save(tmp_path / "blank.png")
    images, inverted = read_images(tmp_path / "blank.png")
    assert images.shape == (1, 28, 28) and images.max() == 0 and inverted.tolist() == [True]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_idx_files(tmp_path, compress):
    digits = np.stack([synthetic_digit(seed) for seed in range(3)])
    digits[1] = 255 - digits[1]  # one dark-on-light image among them
    name = "digits-idx3-ubyte" + (".gz" if compress else "")
    write_idx(tmp_path / name, digits, compress=compress)
    images, inverted = read_images(tmp_path / name)
    assert inverted.tolist() == [False, True, False]
    expected = digits.copy()
    expected[1] = 255 - expected[1]
    np.testing.assert_array_equal(images, expected)
    np.testing.assert_array_equal(read_images(tmp_path / name, index=2)[0], expected[2:3])
    assert torch.equal(load_images(tmp_path / name, index=0), images_to_tensor(expected[:1]))
    with pytest.raises(UserFacingError, match=r"--index 3 is out of range: .* holds 3 images"):
        read_images(tmp_path / name, index=3)


def test_idx_file_of_one_2d_image(tmp_path):
    write_idx(tmp_path / "one-idx2-ubyte", synthetic_digit())
    np.testing.assert_array_equal(read_images(tmp_path / "one-idx2-ubyte")[0][0], synthetic_digit())


def test_index_of_a_single_image_file(tmp_path):
    Image.fromarray(synthetic_digit(), mode="L").save(tmp_path / "digit.png")
    assert load_images(tmp_path / "digit.png", index=0).shape == (1, 784)
    with pytest.raises(UserFacingError, match="holds one image"):
        load_images(tmp_path / "digit.png", index=1)


# --- classify ------------------------------------------------------------------------------


def test_probabilities_sum_to_one_and_digits_are_the_argmax(untrained_model):
    module = load_winner(untrained_model)
    assert not module.training
    X = torch.rand(7, 784)
    digits, probabilities = classify(module, X)
    assert digits.shape == (7,) and digits.dtype == torch.int64
    assert probabilities.shape == (7, 10) and probabilities.dtype == torch.float32
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(7), atol=1e-6)
    assert (probabilities >= 0).all()
    with torch.no_grad():
        assert torch.equal(digits, module(X).argmax(dim=1))
    # The same images as (n, 28, 28), as uint8 grey levels, and one image alone.
    grey = (X * 255).round().to(torch.uint8)
    assert torch.equal(classify(module, X.reshape(7, 28, 28))[1], probabilities)
    assert torch.equal(classify(module, grey)[1], classify(module, grey.float() / 255)[1])
    assert torch.equal(classify(module, grey[3].numpy())[0], digits[3:4])
    with pytest.raises(ValueError, match="expected"):
        classify(module, torch.rand(2, 100))


def test_load_winner_without_a_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserFacingError, match=r"no model at results/winner/winning_net.dat"):
        load_winner()


def test_format_line():
    probabilities = [0.0] * 10
    probabilities[7], probabilities[9] = 0.9984, 0.0016
    assert format_line("a.png", probabilities) == (
        "a.png: digit 7  (p=0.998)  "
        "0:0.000 1:0.000 2:0.000 3:0.000 4:0.000 5:0.000 6:0.000 7:0.998 8:0.000 9:0.002"
    )


# --- the command line ----------------------------------------------------------------------


def test_cli_prints_one_line_per_image(tmp_path, untrained_model, capsys):
    digit = synthetic_digit()
    Image.fromarray(digit, mode="L").save(tmp_path / "digit.png")
    Image.fromarray(255 - digit, mode="L").save(tmp_path / "paper.png")
    write_idx(tmp_path / "three-idx3-ubyte.gz", np.stack([digit] * 3), compress=True)
    paths = [str(tmp_path / name) for name in ("digit.png", "paper.png", "three-idx3-ubyte.gz")]
    assert main([*paths, "--model", str(untrained_model)]) == 0
    captured = capsys.readouterr()
    rows = parse(captured.out)
    assert [row["name"] for row in rows] == [
        paths[0],
        paths[1],
        *(f"{paths[2]}[{i}]" for i in range(3)),
    ]
    assert [row["inverted"] for row in rows] == [False, True, False, False, False]
    module = load_winner(untrained_model)
    expected_digit = int(classify(module, digit[None])[0][0])
    for row in rows:
        assert row["digit"] == expected_digit  # the same image five times
        assert abs(sum(row["probabilities"]) - 1) <= 0.006  # ten values rounded to 0.001
        assert row["p"] == max(row["probabilities"])
    assert f"model {untrained_model}: trial t0000" in captured.err
    # --index picks one image of each IDX file.
    assert main([paths[2], "--index", "1", "--model", str(untrained_model)]) == 0
    assert [row["name"] for row in parse(capsys.readouterr().out)] == [f"{paths[2]}[1]"]


def cli_error(args, capsys) -> str:
    """Run the CLI expecting a user error: exit status 2, one line on stderr, no output."""
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_cli_errors(tmp_path, untrained_model, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(synthetic_digit(), mode="L").save("digit.png")
    model = ["--model", str(untrained_model)]

    message = cli_error(["missing.png", *model], capsys)
    assert "no image at missing.png" in message and "check the path" in message

    (tmp_path / "notes.png").write_text("not an image\n")
    message = cli_error(["notes.png", *model], capsys)
    assert "notes.png is not an image file" in message and "pass a PNG or JPEG" in message

    (tmp_path / "cut.png").write_bytes((tmp_path / "digit.png").read_bytes()[:60])
    assert "cut.png is an image that cannot be decoded" in cli_error(["cut.png", *model], capsys)

    message = cli_error(["digit.png"], capsys)  # no workflow run here: no default model
    assert message == (
        f"error: no model at results/winner/winning_net.dat (in {tmp_path}): run the workflow "
        "first (make run), or pass --model PATH (results/winner/winning_net.dat or "
        "results/final/<trial>/model.pt)"
    )

    for not_a_model in ("digit.png", "notes.png"):
        message = cli_error(["digit.png", "--model", not_a_model], capsys)
        assert f"{not_a_model} is not a model saved by this workflow" in message
        assert "pass --model results/winner/winning_net.dat" in message
    torch.save({"weights": torch.zeros(3)}, "other.pt")
    assert "without the architecture" in cli_error(["digit.png", "--model", "other.pt"], capsys)

    write_idx(tmp_path / "two-idx3-ubyte", np.stack([synthetic_digit()] * 2))
    message = cli_error(["two-idx3-ubyte", "--index", "2", *model], capsys)
    assert "--index 2 is out of range: two-idx3-ubyte holds 2 images (0 to 1)" in message

    write_idx(tmp_path / "labels-idx1-ubyte", np.arange(5, dtype=np.uint8))
    message = cli_error(["labels-idx1-ubyte", *model], capsys)
    assert "is a label file" in message and "pass the images file" in message

    (tmp_path / "short-idx3-ubyte").write_bytes((tmp_path / "two-idx3-ubyte").read_bytes()[:900])
    assert "is truncated" in cli_error(["short-idx3-ubyte", *model], capsys)

    write_idx(tmp_path / "two-idx3-ubyte.gz", np.stack([synthetic_digit()] * 2), compress=True)
    packed = (tmp_path / "two-idx3-ubyte.gz").read_bytes()
    (tmp_path / "cut-idx3-ubyte.gz").write_bytes(packed[: len(packed) // 2])
    message = cli_error(["cut-idx3-ubyte.gz", *model], capsys)
    assert "cut-idx3-ubyte.gz is not a readable gzip file" in message

    write_idx(tmp_path / "big-idx3-ubyte", np.zeros((1, 32, 32), dtype=np.uint8))
    assert "holds 32x32 images" in cli_error(["big-idx3-ubyte", *model], capsys)

    # An error in any image stops before any output (checked in cli_error).
    cli_error(["digit.png", "missing.png", *model], capsys)


def test_cli_as_a_module(tmp_path):
    """``python -m mnist_mlp.classify``: the exit status 2 and the one-line message reach the
    shell (without a traceback); status 0 and the lines are checked through ``main`` above."""
    Image.fromarray(synthetic_digit(), mode="L").save(tmp_path / "digit.png")
    failed = subprocess.run(
        [sys.executable, "-m", "mnist_mlp.classify", "digit.png"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO / "workflow"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 2
    assert failed.stdout == "" and failed.stderr.startswith("error: no model at results/winner")
    assert len(failed.stderr.splitlines()) == 1


# --- a network trained on real MNIST, on real test images ------------------------------------

N_TRAIN_IMAGES = 10_000
N_TEST_IMAGES = 50


@pytest.fixture(scope="module")
def real(mnist_npz, tmp_path_factory):
    """A small network trained for a few epochs on 10,000 real training images (seconds on one
    core), saved as the workflow saves one, and the first 50 official test images."""
    from mnist_mlp.training import TrainingSettings, make_classifier

    mnist = load_mnist(mnist_npz)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        X = images_to_tensor(mnist["train_images"][:N_TRAIN_IMAGES])
        y = torch.from_numpy(mnist["train_labels"][:N_TRAIN_IMAGES].astype(np.int64))
        settings = TrainingSettings(max_epochs=5, batch_size=128, patience=None, seed=0)
        module = make_classifier(TRIAL, settings).fit(X, y).module_.eval()
    finally:
        torch.set_num_threads(threads)
    path = tmp_path_factory.mktemp("real_model") / "winning_net.dat"
    save_model(path, module, TRIAL, {"note": "test model"})
    images = mnist["test_images"][:N_TEST_IMAGES]
    with torch.no_grad():
        expected = module(images_to_tensor(images)).argmax(dim=1).numpy()
    return {
        "model": path,
        "images": images,
        "labels": mnist["test_labels"][:N_TEST_IMAGES],
        "expected": expected,  # the network's answers on the original tensors
    }


def write_pngs(folder, images: np.ndarray) -> list[str]:
    folder.mkdir(exist_ok=True)
    paths = [str(folder / f"test{i:02d}.png") for i in range(len(images))]
    for path, image in zip(paths, images, strict=True):
        Image.fromarray(image, mode="L").save(path)
    return paths


@pytest.mark.mnist
def test_real_test_images_as_png(real, tmp_path, capsys):
    paths = write_pngs(tmp_path / "png", real["images"])
    assert main([*paths, "--model", str(real["model"])]) == 0
    rows = parse(capsys.readouterr().out)
    digits = np.array([row["digit"] for row in rows])
    assert [row["name"] for row in rows] == paths
    assert not any(row["inverted"] for row in rows)
    np.testing.assert_array_equal(digits, real["expected"])  # the PNG round trip is exact
    assert (digits == real["labels"]).mean() >= 0.9
    # The two lines of the README give the same answers.
    module = load_winner(real["model"])
    digits, probabilities = classify(module, load_images(paths[0]))
    assert int(digits[0]) == real["expected"][0]
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(1), atol=1e-6)


@pytest.mark.mnist
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_real_test_images_as_idx(real, tmp_path, capsys, compress):
    path = tmp_path / ("t10k-images-idx3-ubyte" + (".gz" if compress else ""))
    write_idx(path, real["images"], compress=compress)
    assert main([str(path), "--model", str(real["model"])]) == 0
    rows = parse(capsys.readouterr().out)
    assert [row["name"] for row in rows] == [f"{path}[{i}]" for i in range(N_TEST_IMAGES)]
    np.testing.assert_array_equal([row["digit"] for row in rows], real["expected"])
    assert main([str(path), "--index", "17", "--model", str(real["model"])]) == 0
    (row,) = parse(capsys.readouterr().out)
    assert row["name"] == f"{path}[17]" and row["digit"] == real["expected"][17]


@pytest.mark.mnist
def test_real_digit_dark_on_light(real, tmp_path, capsys):
    paths = write_pngs(tmp_path / "paper", 255 - real["images"])
    assert main([*paths, "--model", str(real["model"])]) == 0
    rows = parse(capsys.readouterr().out)
    assert all(row["inverted"] for row in rows)
    np.testing.assert_array_equal([row["digit"] for row in rows], real["expected"])


@pytest.mark.mnist
def test_real_digits_photographed_larger(real, tmp_path, capsys):
    """Test digits enlarged 3x, dark on light, saved as JPEG: the MNIST normalisation (20x20
    box, centre of mass) brings nearly all back to the network's original answer."""
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = []
    for i, image in enumerate(real["images"]):
        photo = Image.fromarray(255 - image, mode="L").resize((84, 84), Image.Resampling.BICUBIC)
        paths.append(str(folder / f"photo{i:02d}.jpg"))
        photo.convert("RGB").save(paths[-1], quality=90)
    assert main([*paths, "--model", str(real["model"])]) == 0
    digits = np.array([row["digit"] for row in parse(capsys.readouterr().out)])
    assert (digits == real["expected"]).mean() >= 0.9


@pytest.mark.mnist
def test_mnist_normalisation_reproduces_mnist(real):
    """MNIST's own images, put through the box fit used for other sizes, barely change: the
    fit is the one MNIST was built with (20x20 box, centre of mass at index 14)."""
    images = real["images"].astype(float)
    fitted = np.stack([np.rint(_fit_to_mnist_box(image)) for image in images])
    assert np.abs(fitted - images).mean() < 0.5  # grey levels, of 255


def test_a_blank_or_uncertain_image_is_flagged_and_an_index_on_a_picture_refused(
    tmp_path, untrained_model, capsys
):
    Image.fromarray(np.full((28, 28), 255, np.uint8), mode="L").save(tmp_path / "blank.png")
    assert main([str(tmp_path / "blank.png"), "--model", str(untrained_model)]) == 0
    line = capsys.readouterr().out
    assert "[blank image: there is no digit to read]" in line
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(noise, mode="L").save(tmp_path / "noise.png")
    assert main([str(tmp_path / "noise.png"), "--model", str(untrained_model)]) == 0
    line = capsys.readouterr().out
    # about half its pixels over half grey, light or dark border alike: no digit, not inverted
    assert re.search(r"\[not a digit: ink on (4[6-9]|5\d)% of the image; MNIST's", line)
    assert "inverted" not in line and LINE.match(line.rstrip("\n"))
    Image.fromarray(255 - noise, mode="L").save(tmp_path / "noise_negative.png")
    negative = [str(tmp_path / "noise_negative.png"), "--json", "--model", str(untrained_model)]
    assert main(negative) == 0
    assert json.loads(capsys.readouterr().out)["images"][0]["not_a_digit"] is True
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255  # a thick "1"
    Image.fromarray(digit, mode="L").save(tmp_path / "one.png")
    assert main([str(tmp_path / "one.png"), "--model", str(untrained_model)]) == 0
    assert "[uncertain: no digit reaches p=0.5" in capsys.readouterr().out  # untrained: flat
    code = main([str(tmp_path / "noise.png"), "--index", "3", "--model", str(untrained_model)])
    assert code == 2 and "an index selects an image of an IDX file" in capsys.readouterr().err


def test_a_huge_picture_is_refused_before_it_is_decoded(tmp_path, untrained_model, capsys):
    import tracemalloc

    big = tmp_path / "big.png"
    Image.new("L", (6000, 5000), 255).save(big)  # 30 million pixels, a small file
    tracemalloc.start()
    code = main([str(big), "--model", str(untrained_model)])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert code == 2 and "6000x5000 pixels, more than the 25,000,000" in capsys.readouterr().err
    assert peak < 20e6  # the 30 MB of pixels were never decoded


def test_an_idx_file_cut_inside_its_header_is_named(tmp_path, untrained_model, capsys):
    cut = tmp_path / "cut-idx3-ubyte"
    cut.write_bytes(bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") + b"\x00\x00")
    assert main([str(cut), "--model", str(untrained_model)]) == 2
    assert "ends inside its IDX header" in capsys.readouterr().err


def test_json_lines_and_an_accuracy_for_an_idx_file_with_its_labels(
    tmp_path, untrained_model, capsys
):
    import json

    digit = synthetic_digit()
    write_idx(tmp_path / "few-images-idx3-ubyte.gz", np.stack([digit] * 4), compress=True)
    labels = tmp_path / "few-labels-idx1-ubyte.gz"
    with gzip.open(labels, "wb") as handle:
        handle.write(bytes([0, 0, 8, 1]) + (4).to_bytes(4, "big") + bytes([3, 3, 3, 3]))
    images = str(tmp_path / "few-images-idx3-ubyte.gz")
    assert main([images, "--model", str(untrained_model), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)  # the labels beside: the accuracy
    assert found["images"] == 4 and found["correct"] in (0, 4)
    low, high = found["interval95"]
    assert 0 <= low <= found["accuracy"] <= high <= 1
    labels.rename(tmp_path / "elsewhere-idx1-ubyte.gz")
    assert main([images, "--model", str(untrained_model), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["images"]
    assert len(rows) == 4 and {len(r["probabilities"]) for r in rows} == {10}
    assert all(r["digit"] == max(range(10), key=r["probabilities"].__getitem__) for r in rows)
    code = main(
        [
            images,
            "--model",
            str(untrained_model),
            "--labels",
            str(tmp_path / "elsewhere-idx1-ubyte.gz"),
        ]
    )
    assert code == 0 and "accuracy" in capsys.readouterr().out
