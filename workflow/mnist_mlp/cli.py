"""``mnist-mlp COMMAND ...``: the package's commands in one place.

mnist-mlp run ...        long runs in the background (mnist_mlp.runs)
mnist-mlp progress ...   where a run stands and its time left (make progress)
mnist-mlp state ...      save, restore or convert a run's finished work (mnist_mlp.runstate)
mnist-mlp records ...    keep a run made before result versions (mnist_mlp.records)
mnist-mlp guard ...      check the result versions (make guard)
mnist-mlp classify ...   classify images with the winner (mnist-classify)
mnist-mlp publish ...    a run's results into a folder of docs (mnist_mlp.publish)
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "run": "runs",
    "progress": "progress",
    "state": "runstate",
    "records": "records",
    "guard": "guard",
    "classify": "classify",
    "publish": "publish",
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(f"mnist_mlp.{COMMANDS[argv[0]]}")
    return module.main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
