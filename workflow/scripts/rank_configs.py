"""Rule rank_configs: gather the CV results, rank them, plot the search."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp import ranking
from mnist_mlp.io import read_json
from mnist_mlp.jobs import start_job

start_job(snakemake.log[0])
table = ranking.build_ranking([read_json(path) for path in snakemake.input])
ranking.write_ranking(
    table,
    tsv=snakemake.output.ranking,
    scores_dat=snakemake.output.sorted_scores,
    params_dat=snakemake.output.sorted_params,
)
ranking.plot_search(table, snakemake.output.plot)
