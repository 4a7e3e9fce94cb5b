localrules:
    sample_trials,
    propose_trials,
    promote_trials,
    rank_trials,


rule sample_trials:
    input:
        proposals,
    output:
        path("sample_trials", "trials"),
    log:
        log_of("sample_trials"),
    params:
        **sampling_params(),
        version=result_version("sample_trials"),
    conda:
        ENV
    script:
        "../scripts/sample_trials.py"


checkpoint propose_trials:
    input:
        results=earlier_results,
        rungs=earlier_rung_tables,
    output:
        path("propose_trials", "batch"),
    log:
        log_of("propose_trials"),
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
        cv=path("cross_validate", "cv"),
        history=path("cross_validate", "history"),
    log:
        log_of("cross_validate"),
    benchmark:
        benchmark_of("cross_validate")
    params:
        trial=hyperparameters,
        settings=training_settings("search"),
        version=result_version("cross_validate"),
    threads: threads_of("cross_validate")
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
        result=path("train_rung", "result"),
        history=path("train_rung", "history"),
        state=path("train_rung", "state"),
    log:
        log_of("train_rung"),
    benchmark:
        benchmark_of("train_rung")
    params:
        trial=hyperparameters,
        settings=training_settings("search"),
        rung=lambda wildcards: int(wildcards.rung),
        budget=lambda wildcards: RUNGS[int(wildcards.rung)],
        version=result_version("train_rung"),
    threads: threads_of("train_rung")
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
        results=rung_results,
        decided=decided_before,
    output:
        path("promote_trials", "decisions"),
    log:
        log_of("promote_trials"),
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
        **({"rungs": path("rank_trials", "rungs")} if HALVING else {}),
        ranking=path("rank_trials", "ranking"),
        sorted_scores=path("rank_trials", "sorted_scores"),
        sorted_params=path("rank_trials", "sorted_params"),
    log:
        log_of("rank_trials"),
    params:
        version=result_version("rank_trials"),
    conda:
        ENV
    script:
        "../scripts/rank_trials.py"


rule export_study:
    input:
        **({"rungs": path("rank_trials", "rungs")} if HALVING else {}),
        results=all_results,
    output:
        path("export_study", "study"),
    log:
        log_of("export_study"),
    params:
        space=SPACE,
        version=result_version("export_study"),
    conda:
        ENV
    script:
        "../scripts/export_study.py"
