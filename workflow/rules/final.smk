localrules:
    write_reference_config,
    select_winner,


rule write_reference_config:
    output:
        "results/final/reference_configs/{config_id}.json",
    log:
        "logs/final/write_reference_config/{config_id}.log",
    params:
        config=reference_config,
    run:
        write_json(output[0], {"config_id": wildcards.config_id, **params.config})
        Path(log[0]).write_text(f"{params.config}\n")


rule retrain:
    input:
        data=MNIST,
        train=TRAIN_INDICES,
        test=TEST_INDICES,
        config=config_json,
    output:
        model="results/final/{config_id}/model.pt",
        metrics="results/final/{config_id}/metrics.json",
        history="results/final/{config_id}/history.tsv",
    log:
        "logs/final/retrain/{config_id}.log",
    benchmark:
        "benchmarks/final/retrain/{config_id}.tsv"
    params:
        **training_params("final"),
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
        configs=retrained_config_jsons,
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
    conda:
        ENV
    script:
        "../scripts/select_winner.py"
