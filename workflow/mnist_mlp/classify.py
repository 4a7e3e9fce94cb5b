"""Classify images of handwritten digits with a saved network (the winner by default).

In Python (with ``workflow`` on ``sys.path``)::

    from mnist_mlp.classify import classify, load_images, load_winner
    digits, probabilities = classify(load_winner(), load_images("my_digit.png"))

From the shell (in the folder holding ``results/``)::

    PYTHONPATH=workflow python -m mnist_mlp.classify my_digit.png [more.png ...]
    PYTHONPATH=workflow python -m mnist_mlp.classify t10k-images-idx3-ubyte.gz --index 0

Images are brought to the MNIST convention the network was trained on: 28x28 grey levels
scaled to [0, 1], a white digit on a black background. An image that is already 28x28 is
taken as it is (apart from the inversion below), so MNIST images saved as PNG classify exactly
as the originals. Any other size is normalised as MNIST's digits were: background removed,
cropped to the digit, scaled to fit a 20x20 box keeping its aspect ratio, and placed in the
28x28 field with its centre of mass at the centre. An image whose border is light on average
(a dark digit on a light background, as drawn on paper) is inverted first.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import zlib
from pathlib import Path

import numpy as np
import torch

from . import layout
from .data import N_PIXELS, images_to_tensor
from .errors import UserFacingError
from .model import MLP, load_model

WINNER_MODEL = Path(layout.output("select_winner", "model"))
SIDE = 28  # MNIST images are SIDE x SIDE
BOX = 20  # MNIST's digits were scaled to fit a BOX x BOX box, then centred in the field
# Pixels above this fraction of the brightest (after background removal) bound the digit.
INK_THRESHOLD = 0.1
# Bytes 0-2 of an IDX file: two zero bytes, then the element type (0x08: unsigned byte).
IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short", 0x0C: "int"}
IDX_TYPES.update({0x0D: "float", 0x0E: "double"})
GZIP_MAGIC = b"\x1f\x8b"
# A picture is refused above this many pixels before it is decoded: a 10000x10000 PNG took 3-5
# GB of memory; a photo of a digit needs a few million at most.
MAX_PIXELS = 25_000_000


# --- reading images ------------------------------------------------------------------------


def read_images(path, index: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The images of one file as MNIST does: uint8 (n, 28, 28), white digit on black.

    ``path`` is an image Pillow reads (PNG, JPEG, ...; one image) or an IDX image file
    (``*-idx3-ubyte``, plain or ``.gz``; all its images, or the one at ``index``). Returns the
    images and, per image, whether it was inverted (a dark digit on a light background).
    Raises ``UserFacingError`` for a missing or unreadable file or an index out of range.
    """
    path = Path(path)
    if not path.exists():
        raise UserFacingError(f"no image at {path}: check the path")
    if path.is_dir():
        raise UserFacingError(f"{path} is a folder: pass image files (PNG, JPEG, IDX)")
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as err:
        raise UserFacingError(
            f"cannot read {path} ({err.strerror}): check its permissions"
        ) from err
    if head[:2] == GZIP_MAGIC or _is_idx(head):
        return _to_white_on_black(_read_idx_images(path, index))
    if index not in (None, 0):
        raise UserFacingError(
            f"index {index} given for {path}, which holds one image: "
            "an index selects an image of an IDX file"
        )
    image, inverted = _read_picture(path)
    return image[None], np.array([inverted])


def load_images(path, index: int | None = None) -> torch.Tensor:
    """The images of ``path`` (see ``read_images``) as the float32 (n, 784) tensor in [0, 1]
    the network takes."""
    images, _ = read_images(path, index)
    return images_to_tensor(images)


def _is_idx(head: bytes) -> bool:
    return len(head) >= 4 and head[:2] == b"\0\0" and head[2] in IDX_TYPES


def _read_idx_images(path: Path, index: int | None) -> np.ndarray:
    """uint8 (n, 28, 28) images of an IDX file (``read_idx``'s format, here also gzipped and
    checked: a truncated file or a label file gets a message, not a reshape error)."""
    try:
        raw = path.read_bytes()
        if raw[:2] == GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise UserFacingError(
            f"{path} is not a readable gzip file ({err}): replace it with an intact copy"
        ) from err
    if not _is_idx(raw[:4]):
        raise UserFacingError(
            f"{path} is gzip-compressed but holds no IDX data: pass a *-idx3-ubyte(.gz) file "
            "or an uncompressed image (PNG, JPEG)"
        )
    if raw[2] != 0x08:
        raise UserFacingError(
            f"{path} is an IDX file of {IDX_TYPES[raw[2]]} values: MNIST images are unsigned "
            "bytes (a *-idx3-ubyte file)"
        )
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise UserFacingError(
            f"{path} ends inside its IDX header ({len(raw)} bytes, the header of a "
            f"{ndim}-dimensional file takes {4 + 4 * ndim}): the file is cut short, replace it"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if ndim == 2:
        shape = (1, *shape)  # one image
    if len(shape) != 3:
        kind = "a label file" if ndim == 1 else f"{ndim}-dimensional"
        raise UserFacingError(
            f"{path} is {kind} (IDX shape {shape}), not images: pass the images file "
            "(*-idx3-ubyte), not the labels (*-idx1-ubyte)"
        )
    if shape[1:] != (SIDE, SIDE):
        raise UserFacingError(
            f"{path} holds {shape[1]}x{shape[2]} images: the network takes 28x28 (MNIST) "
            "images; save them as PNG files to have them resized"
        )
    header = 4 + 4 * ndim
    if len(raw) != header + int(np.prod(shape)):
        raise UserFacingError(
            f"{path} has {len(raw) - header} bytes of pixels where its header announces "
            f"{int(np.prod(shape))}: the file is truncated or damaged, replace it"
        )
    if shape[0] == 0:
        raise UserFacingError(f"{path} holds no images")
    images = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
    if index is None:
        return images
    if not 0 <= index < len(images):
        raise UserFacingError(
            f"--index {index} is out of range: {path} holds {len(images)} images "
            f"(0 to {len(images) - 1})"
        )
    return images[index : index + 1]


def _read_picture(path: Path) -> tuple[np.ndarray, bool]:
    """One image file read by Pillow, as a uint8 28x28 white-on-black image, and whether it
    was inverted."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:  # reads the header only: the size before any decoding
            if image.width * image.height > MAX_PIXELS:
                raise UserFacingError(
                    f"{path} is {image.width}x{image.height} pixels, more than the "
                    f"{MAX_PIXELS:,} this command decodes (a digit needs far fewer): crop or "
                    "shrink it first"
                )
            image = ImageOps.exif_transpose(image)  # photos: the orientation the camera saw
            grey = _grey_levels(image)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
        if isinstance(err, Image.UnidentifiedImageError):
            cause = "not an image file Pillow can read, nor an MNIST IDX file"
        else:
            cause = f"an image that cannot be decoded ({_one_line(err)})"
        raise UserFacingError(
            f"{path} is {cause}: pass a PNG or JPEG image, or a *-idx3-ubyte(.gz) file"
        ) from err
    inverted = _is_dark_on_light(grey)
    if inverted:
        grey = 255.0 - grey
    if grey.shape != (SIDE, SIDE):
        grey = _fit_to_mnist_box(grey)
    return np.rint(grey).astype(np.uint8), inverted


def _grey_levels(image) -> np.ndarray:
    """Grey levels in [0, 255] (float) of a Pillow image of any mode. Transparent pixels show
    the background that contrasts with the opaque ones (the digit): black strokes on a
    transparent canvas are read as black on white, white strokes as white on black."""
    if image.mode in ("I", "F") or image.mode.startswith("I;"):  # 16-bit and float greys
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if values.max() > 255 else 255.0
        return np.clip(values * (255.0 / top), 0, 255)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    if not has_alpha:
        return np.asarray(image.convert("L"), dtype=np.float64)
    rgba = image.convert("RGBA")
    grey = np.asarray(rgba.convert("L"), dtype=np.float64)
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float64) / 255.0
    if alpha.min() == 1.0:
        return grey
    ink = (grey * alpha).sum() / max(alpha.sum(), 1e-12)  # mean grey of the opaque pixels
    background = 255.0 if ink < 127.5 else 0.0
    return grey * alpha + background * (1.0 - alpha)


def _border(image: np.ndarray) -> np.ndarray:
    return np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])


def _is_dark_on_light(image: np.ndarray) -> bool:
    return float(_border(image).mean()) > 127.5


def _to_white_on_black(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Invert the images whose border is light on average (dark digit on light background)."""
    inverted = np.array([_is_dark_on_light(image) for image in images], dtype=bool)
    images = images.copy()
    images[inverted] = 255 - images[inverted]
    return images, inverted


def _fit_to_mnist_box(grey: np.ndarray) -> np.ndarray:
    """A white-on-black image of any size -> 28x28 as MNIST built its images: the background
    level (the border's median) removed and the contrast stretched, cropped to the digit,
    scaled to fit 20x20 keeping its aspect ratio, pasted with its centre of mass at the centre
    of the field. Float grey levels in [0, 255]."""
    from PIL import Image

    ink = np.clip(grey - np.median(_border(grey)), 0, None)
    field = np.zeros((SIDE, SIDE))
    if ink.max() <= 0:
        return field  # a blank image
    ink *= 255.0 / ink.max()
    rows, cols = np.nonzero(ink > INK_THRESHOLD * 255.0)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = BOX / max(crop.shape)
    height = max(1, round(crop.shape[0] * scale))
    width = max(1, round(crop.shape[1] * scale))
    small = Image.fromarray(crop.astype(np.float32), mode="F")
    small = np.clip(np.asarray(small.resize((width, height), Image.Resampling.LANCZOS)), 0, 255)
    total = small.sum()
    if total > 0:
        centre_row = (small.sum(axis=1) * np.arange(height)).sum() / total
        centre_col = (small.sum(axis=0) * np.arange(width)).sum() / total
    else:
        centre_row, centre_col = (height - 1) / 2, (width - 1) / 2
    middle = SIDE / 2  # where MNIST has its centres of mass (index 14.0, not 13.5)
    top = int(np.clip(round(middle - centre_row), 0, SIDE - height))
    left = int(np.clip(round(middle - centre_col), 0, SIDE - width))
    field[top : top + height, left : left + width] = small
    return field


# --- the network ---------------------------------------------------------------------------


def load_winner(path=WINNER_MODEL, device="cpu") -> MLP:
    """The network saved at ``path`` (the winner by default; any ``results/final/<trial>/
    model.pt`` too), in eval mode. ``UserFacingError`` when there is no saved model there."""
    return _load_checked(path, device)[0]


def _load_checked(path, device="cpu") -> tuple[MLP, dict]:
    path = Path(path)
    if not path.exists():
        where = "" if path.is_absolute() else f" (in {Path.cwd()})"
        raise UserFacingError(
            f"no model at {path}{where}: run the workflow first (make run), or pass --model PATH "
            "(results/winner/winning_net.dat or results/final/<trial>/model.pt)"
        )
    if path.is_dir():
        raise UserFacingError(
            f"{path} is a folder: pass --model results/winner/winning_net.dat or "
            "results/final/<trial>/model.pt"
        )
    try:
        return load_model(path, device=device, repair=False)
    except Exception as err:  # torch.load raises many kinds for a file that is not a model
        if isinstance(err, KeyError | TypeError | IndexError):
            cause = "a file without the architecture and weights that save_model writes"
        elif isinstance(err, RuntimeError) and "state_dict" in str(err):
            cause = "its weights do not match its architecture"
        else:
            cause = f"not a PyTorch checkpoint, or a damaged one: {type(err).__name__}"
        raise UserFacingError(
            f"{path} is not a model saved by this workflow ({cause}): pass --model "
            "results/winner/winning_net.dat or results/final/<trial>/model.pt"
        ) from err


def classify(module: torch.nn.Module, images) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits and probabilities (softmax of the logits) of ``module`` for ``images``.

    ``images``: a tensor or array of shape (n, 784) or (n, 28, 28), or one image (784,) or
    (28, 28), float in [0, 1] or uint8 in [0, 255], white digit on black (``load_images``).
    Returns int64 digits (n,) and float32 probabilities (n, 10), on the CPU.
    """
    X = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    if X.dtype == torch.uint8:
        X = X.float() / 255.0
    if X.numel() == N_PIXELS and X.ndim in (1, 2):
        X = X.reshape(1, N_PIXELS)  # one image
    if X.ndim < 2 or X[0].numel() != N_PIXELS:
        raise ValueError(f"images of shape {tuple(X.shape)}: expected (n, 784) or (n, 28, 28)")
    device = next(module.parameters()).device
    X = X.reshape(len(X), N_PIXELS).to(device=device, dtype=torch.float32)
    module.eval()
    with torch.no_grad():
        logits = torch.cat([module(X[start : start + 4096]) for start in range(0, len(X), 4096)])
    probabilities = torch.softmax(logits.float(), dim=1).cpu()
    return probabilities.argmax(dim=1), probabilities


# --- command line --------------------------------------------------------------------------


# Below this probability for the likeliest digit, the answer is flagged as uncertain: a blank or
# noise image still gets a "digit", spread over all ten.
UNCERTAIN = 0.5
# Above this share of pixels over half grey, an image is no digit: MNIST's 60,000 training
# digits have 1.9-39.8 % (median 12.9 %); noise has about half.
DIGIT_INK = 0.45


def format_line(
    name: str,
    probabilities,
    inverted: bool = False,
    width: int = 0,
    blank: bool = False,
    ink: float = 0.0,
) -> str:
    """``name: digit 7  (p=0.998)  0:0.000 1:0.000 ... 9:0.001``, noting an inverted image, a
    blank one, one with more ink than a digit (``ink``: its share of pixels over half grey;
    then no inversion is noted, a guess on an image without a background) and an uncertain
    answer; ``name:`` padded to ``width`` characters to align the lines of several images."""
    probabilities = [float(p) for p in probabilities]
    digit = int(np.argmax(probabilities))
    values = " ".join(f"{d}:{p:.3f}" for d, p in enumerate(probabilities))
    line = f"{f'{name}:':<{width}} digit {digit}  (p={probabilities[digit]:.3f})  {values}"
    if ink > DIGIT_INK:
        return line + (
            f"  [not a digit: ink on {ink:.0%} of the image; MNIST's digits have 2-40 %]"
        )
    if inverted:
        line += "  [inverted: dark digit on light background]"
    if blank:
        line += "  [blank image: there is no digit to read]"
    elif probabilities[digit] < UNCERTAIN:
        line += f"  [uncertain: no digit reaches p={UNCERTAIN}; is it a digit?]"
    return line


def ink_share(image: np.ndarray) -> float:
    """The share of an image's pixels over half grey (after MNIST's conversion)."""
    return float((image > 127).mean())


def is_blank(image: np.ndarray) -> bool:
    """An image of one grey level (after MNIST's conversion): nothing to classify."""
    return int(image.max()) - int(image.min()) < 16


def _one_line(err: BaseException, limit: int = 160) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mnist_mlp.classify",
        description="Classify images of handwritten digits with a saved network: per image, "
        "the predicted digit, its probability and the probabilities of all ten digits.",
    )
    parser.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="PNG/JPEG image (any size; a dark digit on a light background is inverted), or an "
        "MNIST IDX image file (*-idx3-ubyte, plain or .gz)",
    )
    parser.add_argument(
        "--model",
        default=str(WINNER_MODEL),
        help="saved model: results/winner/winning_net.dat (default), "
        "results/winner/ensemble.pt or results/final/<trial>/model.pt",
    )
    parser.add_argument(
        "--index",
        type=int,
        metavar="N",
        help="classify only image N (from 0) of each IDX file (default: all of them)",
    )
    parser.add_argument(
        "--labels",
        metavar="FILE",
        help="the IDX label file of the one IDX image file given (*-idx1-ubyte, plain or .gz): "
        "print the accuracy instead of a line per image. Found by itself beside "
        "*-images-idx3-ubyte files (t10k-labels-idx1-ubyte for t10k-images-idx3-ubyte)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print JSON (one object) instead of text lines"
    )
    return parser


def labels_beside(path: str) -> Path | None:
    """The label file MNIST ships beside an image file (same prefix, same compression)."""
    name = Path(path).name
    if "-images-idx3-ubyte" not in name:
        return None
    beside = Path(path).with_name(name.replace("-images-idx3-ubyte", "-labels-idx1-ubyte"))
    return beside if beside.is_file() else None


def read_labels(path) -> np.ndarray:
    """The uint8 labels of an IDX label file (plain or .gz), checked."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise UserFacingError(f"cannot read the labels {path} ({err})") from err
    if len(raw) < 8 or raw[:4] != bytes([0, 0, 0x08, 1]):
        raise UserFacingError(f"{path} is not an IDX label file (*-idx1-ubyte)")
    count = int.from_bytes(raw[4:8], "big")
    if len(raw) != 8 + count:
        raise UserFacingError(f"{path} announces {count} labels but holds {len(raw) - 8}")
    return np.frombuffer(raw, dtype=np.uint8, offset=8)


def _describe(path: str, checkpoint: dict) -> str:
    metrics = checkpoint.get("metrics", {})
    if "members" in checkpoint:  # an ensemble
        members = ", ".join(member["trial"] for member in checkpoint["members"])
        text = f"model {path}: an ensemble of {members}"
        official = metrics.get("official_test", {}).get("accuracy")
        return text + (f", official test accuracy {official:.4f}" if official else "")
    trial = checkpoint.get("trial", {})
    text = f"model {path}: trial {trial.get('trial', '?')}"
    shape = ", ".join(f"{key}={trial[key]}" for key in ("Nh1", "Nh2") if key in trial)
    text += f" ({shape})" if shape else ""
    if isinstance(metrics.get("official_test_accuracy"), float):
        text += f", official test accuracy {metrics['official_test_accuracy']:.4f}"
    return text


def accuracy_report(digits, labels, model: str, as_json: bool) -> str:
    """The accuracy of ``digits`` against ``labels``, with its 95 % interval."""
    import json

    from .stats import wilson

    correct = int((np.asarray(digits) == labels).sum())
    low, high = wilson(correct, len(labels))
    found = {
        "model": model,
        "images": len(labels),
        "correct": correct,
        "accuracy": correct / len(labels),
        "interval95": [low, high],
    }
    if as_json:
        return json.dumps(found)
    return (
        f"accuracy {found['accuracy']:.4f} ({correct:,} of {len(labels):,} images; 95 % CI "
        f"{low:.4f}-{high:.4f})"
    )


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        names, batches, inverted = [], [], []
        for path in args.images:  # read everything first: an error prints no partial output
            is_picture = not _looks_like_idx(path)
            if is_picture and args.index is not None and Path(path).is_file():
                raise UserFacingError(
                    f"--index {args.index} given for {path}, which holds one image: an index "
                    "selects an image of an IDX file (*-idx3-ubyte)"
                )
            images, flips = read_images(path, None if is_picture else args.index)
            batches.append(images)
            inverted += flips.tolist()
            if is_picture:
                names.append(path)
            else:
                first = 0 if args.index is None else args.index
                names += [f"{path}[{first + i}]" for i in range(len(images))]
        labels = _labels_for(args)
        module, checkpoint = _load_checked(args.model)
    except UserFacingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    images = np.concatenate(batches)
    digits, probabilities = classify(module, images_to_tensor(images))
    print(_describe(args.model, checkpoint), file=sys.stderr)
    if labels is not None:
        if args.index is not None:
            labels = labels[args.index : args.index + 1]
        print(accuracy_report(digits.numpy(), labels, args.model, args.json))
        return 0
    blanks = [is_blank(image) for image in images]
    inks = [ink_share(image) for image in images]
    if args.json:
        import json

        rows = [
            {
                "image": name,
                "digit": int(np.argmax(row)),
                "probabilities": [round(p, 6) for p in row],
                "inverted": bool(flip),
                "blank": blank,
                "not_a_digit": ink > DIGIT_INK,
                "uncertain": max(row) < UNCERTAIN,
            }
            for name, row, flip, blank, ink in zip(
                names, probabilities.tolist(), inverted, blanks, inks, strict=True
            )
        ]
        print(json.dumps({"model": args.model, "images": rows}))
        return 0
    width = max(len(name) for name in names) + 1
    try:
        for name, row, flip, blank, ink in zip(
            names, probabilities.tolist(), inverted, blanks, inks, strict=True
        ):
            print(format_line(name, row, flip, width, blank, ink))
        sys.stdout.flush()
    except BrokenPipeError:  # output piped into head: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _labels_for(args):
    """The labels to score against (``--labels``, or those beside the one IDX file), or None."""
    given = Path(args.labels) if args.labels else None
    idx = [path for path in args.images if _looks_like_idx(path)]
    if given is None and len(args.images) == 1 and idx:
        given = labels_beside(idx[0])
        if given is not None:
            print(f"labels: {given} (beside the images)", file=sys.stderr)
    if given is None:
        return None
    if len(args.images) != 1 or not idx:
        raise UserFacingError("--labels goes with exactly one IDX image file")
    labels = read_labels(given)
    images = read_images(idx[0])[0]
    if len(labels) != len(images):
        raise UserFacingError(
            f"{given} holds {len(labels)} labels for the {len(images)} images of {idx[0]}"
        )
    return labels


def _looks_like_idx(path: str) -> bool:
    """Whether ``path`` is an IDX file (by content; a missing file is left to ``read_images``)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return head[:2] == GZIP_MAGIC or _is_idx(head)


if __name__ == "__main__":
    sys.exit(main())
