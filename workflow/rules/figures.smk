localrules:
    plot_search,
    plot_importance,
    plot_receptive_fields,
    plot_gradient_ascent,
    plot_learning_curves,


rule plot_search:
    input:
        ranking=path("rank_trials", "ranking"),
        summary=path("select_winner", "summary"),
    output:
        report(
            path("plot_search", "figure"),
            caption="../report/search_overview.rst",
            category=CATEGORIES["search"],
            labels={"item": "CV loss against each hyper-parameter"},
        ),
    log:
        log_of("plot_search"),
    params:
        title=SEARCH_TITLE,
        version=result_version("plot_search"),
    conda:
        ENV
    script:
        "../scripts/plot_search.py"


rule plot_receptive_fields:
    input:
        model=path("select_winner", "model"),
    output:
        **{
            layer: report(
                path("plot_receptive_fields", layer),
                caption="../report/receptive_fields.rst",
                category=CATEGORIES["figures"],
                subcategory="Receptive fields",
                labels={"figure": "receptive fields", "layer": LAYER_LABELS[layer]},
            )
            for layer in FIGURE_LAYERS
        },
    log:
        log_of("plot_receptive_fields"),
    params:
        **figure_params("n_neurons", "output_neurons"),
        version=result_version("plot_receptive_fields"),
    conda:
        ENV
    script:
        "../scripts/plot_receptive_fields.py"


rule plot_gradient_ascent:
    input:
        model=path("select_winner", "model"),
        data=MNIST,
        train=TRAIN_INDICES,
    output:
        **{
            layer: report(
                path("plot_gradient_ascent", layer),
                caption="../report/gradient_ascent.rst",
                category=CATEGORIES["figures"],
                subcategory="Gradient ascent",
                labels={"figure": "gradient ascent", "layer": LAYER_LABELS[layer]},
            )
            for layer in FIGURE_LAYERS
        },
        stats=path("plot_gradient_ascent", "stats"),
    log:
        log_of("plot_gradient_ascent"),
    params:
        settings=figure_params(),
        version=result_version("plot_gradient_ascent"),
    conda:
        ENV
    script:
        "../scripts/plot_gradient_ascent.py"


rule plot_learning_curves:
    input:
        histories=retrained("history"),
        winner=path("select_winner", "winner"),
    output:
        report(
            path("plot_learning_curves", "figure"),
            caption="../report/learning_curves.rst",
            category=CATEGORIES["final"],
            labels={"item": "learning curves"},
        ),
    log:
        log_of("plot_learning_curves"),
    params:
        version=result_version("plot_learning_curves"),
    conda:
        ENV
    script:
        "../scripts/plot_learning_curves.py"


rule plot_importance:
    input:
        study=path("export_study", "study"),
        ranking=path("rank_trials", "ranking"),
    output:
        table=path("plot_importance", "table"),
        importance=report(
            path("plot_importance", "importance"),
            caption="../report/importance.rst",
            category=CATEGORIES["search"],
            labels={"item": "importance of each hyper-parameter"},
        ),
        parallel=report(
            path("plot_importance", "parallel"),
            caption="../report/parallel_coordinates.rst",
            category=CATEGORIES["search"],
            labels={"item": "parallel coordinates"},
        ),
    log:
        log_of("plot_importance"),
    params:
        space=SPACE,
        top_k=config["final"]["top_k"],
        version=result_version("plot_importance"),
    conda:
        ENV
    script:
        "../scripts/plot_importance.py"
