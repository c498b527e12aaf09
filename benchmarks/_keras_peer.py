"""The Keras 3 peer of train_speed.py: runs inside the Keras virtual environment.

It speaks JSON lines on stdin / stdout so that train_speed.py can interleave its
epochs with cnnlab's and the plain PyTorch loop's (machine noise then hits all
three alike). Commands:

    {"cmd": "epoch"}     -> {"seconds": s, "images": n, "loss": l, "val_accuracy": a}
                            (one ``model.fit`` epoch with ``validation_data``: the
                            training pass plus the validation pass, as a user runs it)
    {"cmd": "evaluate"}  -> {"val_accuracy": a}
    {"cmd": "quit"}

Started as: python _keras_peer.py DATA.npz MODEL BATCH_SIZE LR [VAL_BATCH_SIZE [PRECISION]]
PRECISION: fp32 (default) or bf16 (Keras's ``mixed_bfloat16`` policy, the output
layer kept in float32 as Keras's mixed-precision guide asks). DATA.npz holds x_train, y_train, x_val, y_val (uint8 images N,H,W,C; int labels).
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

OUTPUT_DTYPE = None  # "float32" under the mixed policy: softmax and loss in full precision


def output_layer(classes):
    return layers.Dense(classes, activation="softmax", dtype=OUTPUT_DTYPE)


def mnist_3conv(shape, classes):
    return keras.Sequential([
        keras.Input(shape),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(128, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Flatten(), output_layer(classes),
    ])


def fashion_mnist_practice(shape, classes):
    return keras.Sequential([
        keras.Input(shape),
        layers.Conv2D(32, 5, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 5, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), output_layer(classes),
    ])


def resnet20(shape, classes, depth=20):
    """He et al. 2015 CIFAR ResNet with option A (parameter-free) shortcuts."""
    blocks = (depth - 2) // 6

    def conv_bn(x, filters, strides=1, relu=True):
        x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                          kernel_initializer="he_normal")(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU()(x) if relu else x

    inputs = keras.Input(shape)
    x = conv_bn(inputs, 16)
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(blocks):
            strides = 2 if stage > 0 and block == 0 else 1
            y = conv_bn(x, filters, strides)
            y = conv_bn(y, filters, relu=False)
            if strides != 1:
                pad = filters // 4
                x = layers.Lambda(
                    lambda t, p=pad: keras.ops.pad(t[:, ::2, ::2, :], [[0, 0], [0, 0], [0, 0], [p, p]])
                )(x)
            x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, output_layer(classes)(x))


MODELS = {"mnist_3conv": mnist_3conv, "fashion_mnist_practice": fashion_mnist_practice, "resnet20": resnet20}


def main() -> None:
    data_path, model_name, batch_size, lr = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    val_batch = int(sys.argv[5]) if len(sys.argv) > 5 else 512
    precision = sys.argv[6] if len(sys.argv) > 6 else "fp32"
    if precision == "bf16":
        global OUTPUT_DTYPE
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        OUTPUT_DTYPE = "float32"
    keras.utils.set_random_seed(0)
    data = np.load(data_path)
    x_train = data["x_train"].astype("float32") / 255.0
    x_val = data["x_val"].astype("float32") / 255.0
    y_train, y_val = data["y_train"].astype("int64"), data["y_val"].astype("int64")
    classes = int(max(y_train.max(), y_val.max()) + 1)
    model = MODELS[model_name](x_train.shape[1:], classes)
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # Warm up (graph tracing of the train and test functions) outside the timed epochs;
    # the warm-up's updates are undone so every peer starts from its initial weights.
    initial = model.get_weights()
    model.fit(x_train[: batch_size * 5], y_train[: batch_size * 5], batch_size=batch_size, epochs=1, verbose=0,
              validation_data=(x_val[:val_batch], y_val[:val_batch]), validation_batch_size=val_batch)
    model.set_weights(initial)
    print(json.dumps({"ready": True, "params": int(model.count_params()),
                      "policy": keras.mixed_precision.global_policy().name}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)["cmd"]
        if command == "epoch":
            start = time.perf_counter()
            history = model.fit(x_train, y_train, batch_size=batch_size, epochs=1, shuffle=True, verbose=0,
                                validation_data=(x_val, y_val), validation_batch_size=val_batch)
            seconds = time.perf_counter() - start
            reply = {"seconds": seconds, "images": len(x_train), "loss": float(history.history["loss"][-1]),
                     "val_accuracy": float(history.history["val_accuracy"][-1])}
        elif command == "evaluate":
            _, accuracy = model.evaluate(x_val, y_val, batch_size=val_batch, verbose=0)
            reply = {"val_accuracy": float(accuracy)}
        else:
            break
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
