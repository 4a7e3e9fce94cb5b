localrules:
    sample_trials,
    rank_trials,


rule sample_trials:
    output:
        "results/search/trials.tsv",
    log:
        "logs/search/sample_trials.log",
    params:
        seed=config["seed"],
        n_trials=config["search"]["n_trials"],
        space=search_space(config["search"]),
        version=result_version("sample_trials"),
    conda:
        ENV
    script:
        "../scripts/sample_trials.py"


rule cross_validate:
    input:
        data=MNIST,
        train=TRAIN_INDICES,
    output:
        cv="results/search/cv/{trial}.json",
        history="results/search/cv/{trial}.history.tsv",
    log:
        "logs/search/cross_validate/{trial}.log",
    benchmark:
        "benchmarks/search/cross_validate/{trial}.tsv"
    params:
        trial=hyperparameters,
        settings=training_settings("search"),
        version=result_version("cross_validate"),
    threads: 1
    resources:
        mem_mb=2000,
        gpu=GPUS_PER_TRAINING_JOB,
        runtime=60,
    conda:
        ENV
    script:
        "../scripts/cross_validate.py"


checkpoint rank_trials:
    input:
        expand("results/search/cv/{trial}.json", trial=TRIALS),
    output:
        ranking="results/search/ranking.tsv",
        sorted_scores="results/search/sorted_scores.dat",
        sorted_params="results/search/sorted_params.dat",
    log:
        "logs/search/rank_trials.log",
    params:
        version=result_version("rank_trials"),
    conda:
        ENV
    script:
        "../scripts/rank_trials.py"
