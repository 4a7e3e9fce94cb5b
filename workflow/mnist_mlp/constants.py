"""Facts about MNIST and the network that several stages share (standard library only)."""

N_PIXELS = 28 * 28
N_CLASSES = 10
# Images per digit among MNIST's 60,000 training images (the published counts): the rarest
# digit (5) bounds the number of CV folds, since each fold needs every digit.
MNIST_TRAIN_CLASS_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
# Evaluation needs no gradients, so it runs in larger batches than training.
EVAL_BATCH_SIZE = 4096
# skorch's default internal validation split, 20 % of a CV fold's training images (stratified):
# early stopping watches it.
VALID_FRACTION = 0.2
# The winner's layers the figures show, and how the figures name them.
LAYERS = ("layer1", "layer2", "output")
LAYER_NAMES = {"layer1": "hidden layer 1", "layer2": "hidden layer 2", "output": "output layer"}
