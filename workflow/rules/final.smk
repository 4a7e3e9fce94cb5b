localrules:
    select_winner,


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
        code=code("retrain.py"),
    threads: 2
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
        summary=report(
            "results/final/summary.tsv",
            caption="../report/summary.rst",
            category="Final",
        ),
        winner=report(
            "results/winner/winner.json",
            caption="../report/winner.rst",
            category="Final",
        ),
        model="results/winner/winning_net.dat",
    log:
        "logs/final/select_winner.log",
    params:
        code=code("select_winner.py"),
    conda:
        ENV
    script:
        "../scripts/select_winner.py"
