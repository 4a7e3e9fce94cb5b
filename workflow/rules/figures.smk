localrules:
    plot_receptive_fields,
    plot_gradient_ascent,
    plot_learning_curves,


rule plot_receptive_fields:
    input:
        model="results/winner/winning_net.dat",
    output:
        **{
            layer: report(
                f"results/figures/receptive_fields_{layer}.png",
                caption="../report/receptive_fields.rst",
                category="Figures",
                subcategory="Receptive fields",
            )
            for layer in FIGURE_LAYERS
        },
    log:
        "logs/figures/plot_receptive_fields.log",
    params:
        **figure_params("n_neurons", "output_neurons"),
        code=code("plot_receptive_fields.py"),
    conda:
        ENV
    script:
        "../scripts/plot_receptive_fields.py"


rule plot_gradient_ascent:
    input:
        model="results/winner/winning_net.dat",
    output:
        **{
            layer: report(
                f"results/figures/gradient_ascent_{layer}.png",
                caption="../report/gradient_ascent.rst",
                category="Figures",
                subcategory="Gradient ascent",
            )
            for layer in FIGURE_LAYERS
        },
        stats="results/figures/gradient_ascent.json",
    log:
        "logs/figures/plot_gradient_ascent.log",
    params:
        settings=figure_params(),
        code=code("plot_gradient_ascent.py"),
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
            category="Final",
        ),
    log:
        "logs/figures/plot_learning_curves.log",
    params:
        code=code("plot_learning_curves.py"),
    conda:
        ENV
    script:
        "../scripts/plot_learning_curves.py"
