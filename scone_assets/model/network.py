"""SCONE's CNN (Qu et al. 2021), layer for layer, in Keras 3.

Input (y, x, 2) = (wavelength bins, time bins, [mean, std]). Each block is
ZeroPadding2D((0, 1)) -> Conv2D(filters, (filters, 3), elu) -> a transpose to
(batch, channels, width, height) -> BatchNorm; two blocks of y filters, max
pool, two blocks of y/2, max pool, flatten, dropout 0.5, (redshift and its
error when `with_z`), dense 32 relu, dropout 0.3, then one sigmoid (SN Ia vs
the rest) or a softmax over the classes. Adam, learning rate 5e-5.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers  # noqa: E402

LEARNING_RATE = 5e-5


@keras.saving.register_keras_serializable(package="scone_assets")
class SconeTranspose(layers.Layer):
    """SCONE's `Reshape`: (batch, h, w, c) -> (batch, c, w, h). Registered, so a saved
    model loads with plain `keras.models.load_model`."""

    def call(self, inputs):
        return keras.ops.transpose(inputs, axes=(0, 3, 2, 1))

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, c, w, h)


def _block(x, filters: int, name: str):
    x = layers.ZeroPadding2D(padding=(0, 1), name=f"{name}_pad")(x)
    x = layers.Conv2D(filters, (filters, 3), activation="elu", name=f"{name}_conv")(x)
    x = SconeTranspose(name=f"{name}_transpose")(x)
    return layers.BatchNormalization(name=f"{name}_bn")(x)


def build_model(num_wavelength_bins: int, num_mjd_bins: int, *, n_classes: int = 2,
                categorical: bool = False, with_z: bool = False) -> keras.Model:
    y = int(num_wavelength_bins)
    if y < 4 or y % 2:
        raise ValueError(f"num_wavelength_bins must be even and at least 4 for SCONE's network (got {y})")
    if categorical and n_classes < 2:
        raise ValueError(f"categorical classification needs at least 2 classes (got {n_classes})")
    image = keras.Input(shape=(y, int(num_mjd_bins), 2), name="image")
    inputs = [image]
    x = _block(image, y, "block1")
    x = _block(x, y, "block2")
    x = layers.MaxPooling2D((2, 2), name="pool1")(x)
    x = _block(x, y // 2, "block3")
    x = _block(x, y // 2, "block4")
    x = layers.MaxPooling2D((2, 2), name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.5, name="dropout1")(x)
    if with_z:
        z = keras.Input(shape=(1,), name="z")
        z_err = keras.Input(shape=(1,), name="z_err")
        inputs += [z, z_err]
        x = layers.Concatenate(name="with_z")([x, z, z_err])
    x = layers.Dense(32, activation="relu", name="dense")(x)
    x = layers.Dropout(0.3, name="dropout2")(x)
    if categorical:
        out = layers.Dense(n_classes, activation="softmax", name="label")(x)
        loss = "sparse_categorical_crossentropy"
    else:
        out = layers.Dense(1, activation="sigmoid", name="label")(x)
        loss = "binary_crossentropy"
    model = keras.Model(inputs=inputs, outputs=out, name="scone")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE), loss=loss,
                  metrics=["accuracy"])
    return model
