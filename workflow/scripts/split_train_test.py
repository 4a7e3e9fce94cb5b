"""Rule split_train_test: seeded, stratified split of the 60,000 training images."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.data import load_mnist, save_indices, stratified_split
from mnist_mlp.jobs import start_job

start_job(snakemake.log[0])
labels = load_mnist(snakemake.input[0])["train_labels"]
train, test = stratified_split(labels, snakemake.params.test_fraction, snakemake.params.seed)
save_indices(snakemake.output.train, train)
save_indices(snakemake.output.test, test)
logging.info("train part: %d images, test part: %d images", len(train), len(test))
