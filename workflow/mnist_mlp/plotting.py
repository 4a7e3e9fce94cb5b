"""Matplotlib without a display, and PNGs written atomically like every other artifact."""

from __future__ import annotations

import io

from .io import atomic_write_bytes

FIGURE_DPI = 100


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # jobs run on machines without a display
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path, dpi: int = FIGURE_DPI) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(fig)
    atomic_write_bytes(path, lambda handle: handle.write(buffer.getvalue()))
