localrules:
    sample_trials,
    propose_trials,
    promote_trials,
    rank_trials,


rule sample_trials:
    input:
        proposals,
    output:
        "results/search/trials.tsv",
    log:
        "logs/search/sample_trials.log",
    params:
        **sampling_params(),
        version=result_version("sample_trials"),
    conda:
        ENV
    script:
        "../scripts/sample_trials.py"


checkpoint propose_trials:
    input:
        earlier_results,
    output:
        "results/search/batches/batch{batch}.json",
    log:
        "logs/search/propose_trials/batch{batch}.log",
    params:
        seed=config["seed"],
        batch=lambda wildcards: int(wildcards.batch),
        first=lambda wildcards: batch_range(int(wildcards.batch))[0],
        size=lambda wildcards: batch_range(int(wildcards.batch))[1],
        space=SPACE,
        version=result_version("propose_trials"),
    conda:
        ENV
    script:
        "../scripts/propose_trials.py"


rule cross_validate:
    input:
        data=MNIST,
        train=TRAIN_INDICES,
        proposal=proposal_of,
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


rule train_rung:
    input:
        data=MNIST,
        train=TRAIN_INDICES,
        proposal=proposal_of,
        previous=previous_rung_state,
    output:
        result="results/search/halving/{trial}/rung{rung}.json",
        history="results/search/halving/{trial}/rung{rung}.history.tsv",
        state="results/search/halving/{trial}/rung{rung}.state.pt",
    log:
        "logs/search/train_rung/{trial}/rung{rung}.log",
    benchmark:
        "benchmarks/search/train_rung/{trial}/rung{rung}.tsv"
    params:
        trial=hyperparameters,
        settings=training_settings("search"),
        rung=lambda wildcards: int(wildcards.rung),
        budget=lambda wildcards: RUNGS[int(wildcards.rung)],
        version=result_version("train_rung"),
    threads: 1
    resources:
        mem_mb=2000,
        gpu=GPUS_PER_TRAINING_JOB,
        runtime=60,
    conda:
        ENV
    script:
        "../scripts/train_rung.py"


checkpoint promote_trials:
    input:
        rung_results,
    output:
        "results/search/halving/batch{batch}/rung{rung}.tsv",
    log:
        "logs/search/promote_trials/batch{batch}/rung{rung}.log",
    params:
        eta=SEARCH["halving"]["eta"],
        last=lambda wildcards: int(wildcards.rung) == len(RUNGS) - 1,
        version=result_version("promote_trials"),
    conda:
        ENV
    script:
        "../scripts/promote_trials.py"


checkpoint rank_trials:
    input:
        results=all_results,
        rungs=rung_tables,
    output:
        **({"rungs": "results/search/rungs.tsv"} if HALVING else {}),
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


rule export_study:
    input:
        **({"rungs": "results/search/rungs.tsv"} if HALVING else {}),
        results=all_results,
    output:
        "results/search/study.db",
    log:
        "logs/search/export_study.log",
    params:
        space=SPACE,
        version=result_version("export_study"),
    conda:
        ENV
    script:
        "../scripts/export_study.py"
