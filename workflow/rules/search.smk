localrules:
    sample_config,
    tabulate_configs,
    rank_configs,


rule sample_config:
    output:
        "results/search/configs/{config_id}.json",
    log:
        "logs/search/sample_config/{config_id}.log",
    params:
        seed=config["seed"],
        space=search_space(config["search"]),
    run:
        # Microseconds of work: run inside Snakemake instead of starting a process per config.
        drawn = write_sampled_config(output[0], params.seed, wildcards.config_id, params.space)
        Path(log[0]).write_text(f"{drawn}\n")


rule tabulate_configs:
    input:
        expand("results/search/configs/{config_id}.json", config_id=CONFIG_IDS),
    output:
        "results/search/configs.tsv",
    log:
        "logs/search/tabulate_configs.log",
    run:
        write_configs_table([read_json(path) for path in input], output[0])
        Path(log[0]).write_text(f"{len(input)} configurations\n")


rule cross_validate:
    input:
        data=MNIST,
        train=TRAIN_INDICES,
        config="results/search/configs/{config_id}.json",
    output:
        "results/search/cv/{config_id}.json",
    log:
        "logs/search/cross_validate/{config_id}.log",
    benchmark:
        "benchmarks/search/cross_validate/{config_id}.tsv"
    params:
        **training_params("search"),
    threads: 1
    resources:
        mem_mb=2000,
        gpu=GPUS_PER_TRAINING_JOB,
        runtime=60,
    conda:
        ENV
    script:
        "../scripts/cross_validate.py"


checkpoint rank_configs:
    input:
        expand("results/search/cv/{config_id}.json", config_id=CONFIG_IDS),
    output:
        ranking=report(
            "results/search/ranking.tsv",
            caption="../report/ranking.rst",
            category="Search",
        ),
        sorted_scores="results/search/sorted_scores.dat",
        sorted_params="results/search/sorted_params.dat",
        plot=report(
            "results/search/search_overview.png",
            caption="../report/search_overview.rst",
            category="Search",
        ),
    log:
        "logs/search/rank_configs.log",
    conda:
        ENV
    script:
        "../scripts/rank_configs.py"
