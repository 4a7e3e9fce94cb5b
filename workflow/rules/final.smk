localrules:
    select_winner,
    report_tables,
    export_models,


rule retrain:
    input:
        data=MNIST,
        train=TRAIN_INDICES,
        test=TEST_INDICES,
        proposal=proposal_of,
    output:
        model=path("retrain", "model"),
        metrics=path("retrain", "metrics"),
        history=path("retrain", "history"),
    log:
        log_of("retrain"),
    benchmark:
        benchmark_of("retrain")
    params:
        trial=hyperparameters,
        settings=training_settings("final"),
        version=result_version("retrain"),
    # One thread: two one-thread retrainings do 2.0x the work of one, a two-thread one 1.3x
    # (README, "Cost and speed"), and the results are the same. profiles/slurm sets 2, where all
    # 16 run at once and a thread more shortens the stage.
    threads: threads_of("retrain")
    resources:
        mem_mb=2000,
        gpu=GPUS_PER_TRAINING_JOB,
        runtime=60,
    conda:
        ENV
    script:
        "../scripts/retrain.py"


rule select_winner:
    input:
        metrics=retrained("metrics"),
        models=retrained("model"),
        ranking=path("rank_trials", "ranking"),
    output:
        summary=path("select_winner", "summary"),
        winner=path("select_winner", "winner"),
        model=path("select_winner", "model"),
    log:
        log_of("select_winner"),
    params:
        version=result_version("select_winner"),
    conda:
        ENV
    script:
        "../scripts/select_winner.py"


rule report_tables:
    input:
        **({"rungs": path("rank_trials", "rungs")} if HALVING else {}),
        ranking=path("rank_trials", "ranking"),
        summary=path("select_winner", "summary"),
        winner=path("select_winner", "winner"),
        ensemble=path("build_ensemble", "summary"),
        comparison=path("build_ensemble", "comparison"),
    output:
        **(
            {
                "rungs": report(
                    path("report_tables", "rungs"),
                    caption="../report/rungs.rst",
                    category=CATEGORIES["search"],
                    labels={"item": "successive halving's decisions"},
                )
            }
            if HALVING
            else {}
        ),
        winner=report(
            path("report_tables", "winner"),
            caption="../report/winner.rst",
            category=CATEGORIES["winner"],
            labels={"item": "the winner and its accuracies"},
        ),
        ranking=report(
            path("report_tables", "ranking"),
            caption="../report/ranking.rst",
            category=CATEGORIES["search"],
            labels={"item": "ranking of all trials"},
        ),
        retrained=report(
            path("report_tables", "retrained"),
            caption="../report/summary.rst",
            category=CATEGORIES["final"],
            labels={"item": "retrained networks"},
        ),
    log:
        log_of("report_tables"),
    params:
        version=result_version("report_tables"),
    conda:
        ENV
    script:
        "../scripts/report_tables.py"


rule build_ensemble:
    input:
        data=MNIST,
        test=TEST_INDICES,
        models=candidates("model"),
        summary=path("select_winner", "summary"),
        ranking=path("rank_trials", "ranking"),
    output:
        ensemble=path("build_ensemble", "ensemble"),
        summary=path("build_ensemble", "summary"),
        comparison=path("build_ensemble", "comparison"),
    log:
        log_of("build_ensemble"),
    params:
        size=config["final"]["ensemble"],
        version=result_version("build_ensemble"),
    threads: threads_of("build_ensemble")
    resources:
        mem_mb=3000,
    conda:
        ENV
    script:
        "../scripts/build_ensemble.py"


rule export_models:
    input:
        winner=path("select_winner", "model"),
        ensemble=path("build_ensemble", "ensemble"),
    output:
        winner=path("export_models", "winner"),
        ensemble=path("export_models", "ensemble"),
    log:
        log_of("export_models"),
    params:
        version=result_version("export_models"),
    conda:
        ENV
    script:
        "../scripts/export_models.py"


rule export_tracking:
    input:
        results=all_results,
        histories=result_histories,
        ranking=path("rank_trials", "ranking"),
        retrained=retrained("metrics"),
        retrained_histories=retrained("history"),
    output:
        TRACKING_OUTPUT,
    log:
        log_of("export_tracking"),
    params:
        backend=config["tracking"]["backend"],
        version=result_version("export_tracking"),
    conda:
        ENV
    script:
        "../scripts/export_tracking.py"
