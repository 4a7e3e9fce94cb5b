localrules:
    download_mnist,  # compute nodes often have no internet access


rule download_mnist:
    output:
        MNIST,
    log:
        log_of("download_mnist"),
    # first of all jobs: an offline machine or a wrong mnist_dir fails the run within seconds
    priority: 100
    params:
        version=result_version("download_mnist"),
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
        log_of("split_train_test"),
    priority: 100
    params:
        seed=config["seed"],
        test_fraction=config["test_fraction"],
        version=result_version("split_train_test"),
    conda:
        ENV
    script:
        "../scripts/split_train_test.py"
