"""Rule download_mnist: fetch MNIST (or copy a local one), verify it, store one .npz."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job

# before the stage's imports (torch, skorch: seconds): the watch on Snakemake is armed first
start_job(snakemake.log[0], snakemake.output)

from mnist_mlp.data import download_mnist_stage

# mnist_dir comes from the config, not from params: the MD5 check fixes what the data are, so
# where they were copied from must not make everything downstream rerun.
download_mnist_stage(Path(snakemake.output[0]), snakemake.config["mnist_dir"])
