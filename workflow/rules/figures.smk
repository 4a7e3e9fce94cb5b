localrules:
    plot_search,
    plot_importance,
    plot_receptive_fields,
    plot_gradient_ascent,
    plot_learning_curves,


rule plot_search:
    input:
        ranking="results/search/ranking.tsv",
        summary="results/final/summary.tsv",
    output:
        report(
            "results/figures/search_overview.png",
            caption="../report/search_overview.rst",
            category=CATEGORIES["search"],
            labels={"item": "CV loss against each hyper-parameter"},
        ),
    log:
        "logs/figures/plot_search.log",
    params:
        title=SEARCH_TITLE,
        version=result_version("plot_search"),
    conda:
        ENV
    script:
        "../scripts/plot_search.py"


rule plot_receptive_fields:
    input:
        model="results/winner/winning_net.dat",
    output:
        **{
            layer: report(
                f"results/figures/receptive_fields_{layer}.png",
                caption="../report/receptive_fields.rst",
                category=CATEGORIES["figures"],
                subcategory="Receptive fields",
                labels={"figure": "receptive fields", "layer": LAYER_LABELS[layer]},
            )
            for layer in FIGURE_LAYERS
        },
    log:
        "logs/figures/plot_receptive_fields.log",
    params:
        **figure_params("n_neurons", "output_neurons"),
        version=result_version("plot_receptive_fields"),
    conda:
        ENV
    script:
        "../scripts/plot_receptive_fields.py"


rule plot_gradient_ascent:
    input:
        model="results/winner/winning_net.dat",
        data=MNIST,
        train=TRAIN_INDICES,
    output:
        **{
            layer: report(
                f"results/figures/gradient_ascent_{layer}.png",
                caption="../report/gradient_ascent.rst",
                category=CATEGORIES["figures"],
                subcategory="Gradient ascent",
                labels={"figure": "gradient ascent", "layer": LAYER_LABELS[layer]},
            )
            for layer in FIGURE_LAYERS
        },
        stats="results/figures/gradient_ascent.json",
    log:
        "logs/figures/plot_gradient_ascent.log",
    params:
        settings=figure_params(),
        version=result_version("plot_gradient_ascent"),
    conda:
        ENV
    script:
        "../scripts/plot_gradient_ascent.py"


rule plot_learning_curves:
    input:
        histories=retrained("history.tsv"),
        winner="results/winner/winner.json",
    output:
        report(
            "results/figures/learning_curves.png",
            caption="../report/learning_curves.rst",
            category=CATEGORIES["final"],
            labels={"item": "learning curves"},
        ),
    log:
        "logs/figures/plot_learning_curves.log",
    params:
        version=result_version("plot_learning_curves"),
    conda:
        ENV
    script:
        "../scripts/plot_learning_curves.py"


rule plot_importance:
    input:
        study="results/search/study.db",
        ranking="results/search/ranking.tsv",
    output:
        table="results/search/importance.tsv",
        importance=report(
            "results/figures/importance.png",
            caption="../report/importance.rst",
            category=CATEGORIES["search"],
            labels={"item": "importance of each hyper-parameter"},
        ),
        parallel=report(
            "results/figures/parallel_coordinates.png",
            caption="../report/parallel_coordinates.rst",
            category=CATEGORIES["search"],
            labels={"item": "parallel coordinates"},
        ),
    log:
        "logs/figures/plot_importance.log",
    params:
        space=SPACE,
        top_k=config["final"]["top_k"],
        version=result_version("plot_importance"),
    conda:
        ENV
    script:
        "../scripts/plot_importance.py"
