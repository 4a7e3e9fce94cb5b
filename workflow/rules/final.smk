localrules:
    select_winner,
    report_tables,
    export_models,


rule retrain:
    input:
        data=MNIST,
        train=TRAIN_INDICES,
        test=TEST_INDICES,
    output:
        model="results/final/{trial}/model.pt",
        metrics="results/final/{trial}/metrics.json",
        history="results/final/{trial}/history.tsv",
    log:
        "logs/final/retrain/{trial}.log",
    benchmark:
        "benchmarks/final/retrain/{trial}.tsv"
    params:
        trial=hyperparameters,
        settings=training_settings("final"),
        version=result_version("retrain"),
    # One thread: two one-thread retrainings do 2.0x the work of one, a two-thread one 1.3x
    # (README, "Cost and speed"), and the results are the same. profiles/slurm sets 2, where all
    # 16 run at once and a thread more shortens the stage.
    threads: 1
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
        metrics=retrained("metrics.json"),
        models=retrained("model.pt"),
        ranking="results/search/ranking.tsv",
    output:
        summary="results/final/summary.tsv",
        winner="results/winner/winner.json",
        model="results/winner/winning_net.dat",
    log:
        "logs/final/select_winner.log",
    params:
        version=result_version("select_winner"),
    conda:
        ENV
    script:
        "../scripts/select_winner.py"


rule report_tables:
    input:
        **({"rungs": "results/search/rungs.tsv"} if HALVING else {}),
        ranking="results/search/ranking.tsv",
        summary="results/final/summary.tsv",
        winner="results/winner/winner.json",
        ensemble="results/winner/ensemble.json",
        comparison="results/winner/comparison.json",
    output:
        **(
            {
                "rungs": report(
                    "results/report/rungs.html",
                    caption="../report/rungs.rst",
                    category=CATEGORIES["search"],
                    labels={"item": "successive halving's decisions"},
                )
            }
            if HALVING
            else {}
        ),
        winner=report(
            "results/report/winner.html",
            caption="../report/winner.rst",
            category=CATEGORIES["winner"],
            labels={"item": "the winner and its accuracies"},
        ),
        ranking=report(
            "results/report/ranking.html",
            caption="../report/ranking.rst",
            category=CATEGORIES["search"],
            labels={"item": "ranking of all trials"},
        ),
        retrained=report(
            "results/report/retrained.html",
            caption="../report/summary.rst",
            category=CATEGORIES["final"],
            labels={"item": "retrained networks"},
        ),
    log:
        "logs/report/report_tables.log",
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
        models=candidates("model.pt"),
        summary="results/final/summary.tsv",
        ranking="results/search/ranking.tsv",
    output:
        ensemble="results/winner/ensemble.pt",
        summary="results/winner/ensemble.json",
        comparison="results/winner/comparison.json",
    log:
        "logs/final/build_ensemble.log",
    params:
        size=config["final"]["ensemble"],
        version=result_version("build_ensemble"),
    threads: 1
    resources:
        mem_mb=3000,
    conda:
        ENV
    script:
        "../scripts/build_ensemble.py"


rule export_models:
    input:
        winner="results/winner/winning_net.dat",
        ensemble="results/winner/ensemble.pt",
    output:
        winner="results/winner/winner.pt2",
        ensemble="results/winner/ensemble.pt2",
    log:
        "logs/final/export_models.log",
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
        ranking="results/search/ranking.tsv",
        retrained=retrained("metrics.json"),
        retrained_histories=retrained("history.tsv"),
    output:
        TRACKING_OUTPUT,
    log:
        "logs/final/export_tracking.log",
    params:
        backend=config["tracking"]["backend"],
        version=result_version("export_tracking"),
    conda:
        ENV
    script:
        "../scripts/export_tracking.py"
