localrules:
    download_mnist,  # compute nodes often have no internet access


rule download_mnist:
    output:
        MNIST,
    log:
        "logs/data/download_mnist.log",
    conda:
        ENV
    script:
        "../scripts/download_mnist.py"


rule split_train_test:
    input:
        MNIST,
    output:
        train=TRAIN_INDICES,
        test=TEST_INDICES,
    log:
        "logs/data/split_train_test.log",
    params:
        seed=config["seed"],
        test_fraction=config["test_fraction"],
    conda:
        ENV
    script:
        "../scripts/split_train_test.py"
