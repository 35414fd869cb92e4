"""The ranker's network compiled for inference: its logit as a few numpy operations on the Keras
weights (embedding gather, one matrix product per dense layer).

Serving scores about 1,000 rows at a time; TensorFlow's per-call dispatch costs more than the
arithmetic at that size (a traced `tf.function` about 2-7 ms per call on the shared machine, this
about 0.3 ms), and numpy releases the GIL in its matrix products, so concurrent requests overlap.

`NumpyForward.of(model)` recognises the architecture `ml.ranking.model.build_model` makes (by
layer names and types), copies the weights, and checks itself against Keras on random inputs
before it is used; anything else (a new layer, a different activation, a mismatch) gives None and
the scorer keeps calling TensorFlow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import keras
import numpy as np

log = logging.getLogger(__name__)

# the self-check at load: largest allowed |numpy logit - Keras logit| on random inputs
SELF_CHECK_TOLERANCE = 1e-5
SELF_CHECK_ROWS = 256
KNOWN_LAYERS = {
    "InputLayer",
    "Embedding",
    "Flatten",
    "Concatenate",
    "Dense",
    "Dropout",
    "Add",
    "Identity",
    "Activation",
}


@dataclass(frozen=True)
class Dense:
    kernel: np.ndarray  # float32 [inputs, units]
    bias: np.ndarray  # float32 [units]
    relu: bool


@dataclass(frozen=True)
class NumpyForward:
    """Logits of preprocessed inputs (`numeric` float32, `categorical` int32 table indices)."""

    embeddings: np.ndarray | None  # float32 [categories, width], None without categoricals
    hidden: tuple[Dense, ...]
    deep: Dense
    wide: Dense | None
    _first_kernel: np.ndarray = field(init=False, repr=False)
    _first_bias: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # the wide part and the first hidden layer read the same inputs: one matrix product
        first = self.hidden[0] if self.hidden else None
        kernels = [d.kernel for d in (first, self.wide) if d is not None]
        biases = [d.bias for d in (first, self.wide) if d is not None]
        object.__setattr__(self, "_first_kernel", np.ascontiguousarray(np.hstack(kernels)))
        object.__setattr__(self, "_first_bias", np.concatenate(biases))

    def __call__(self, numeric: np.ndarray, categorical: np.ndarray) -> np.ndarray:
        x = np.asarray(numeric, dtype=np.float32)
        if self.embeddings is not None:
            embedded = self.embeddings[categorical].reshape(len(x), -1)
            x = np.concatenate([x, embedded], axis=1)
        wide = None
        if self.hidden or self.wide is not None:
            out = x @ self._first_kernel
            out += self._first_bias
            if self.wide is not None:
                wide = out[:, -1:]
                out = out[:, :-1]
            if self.hidden:
                x = np.maximum(out, 0.0)
        for layer in self.hidden[1:]:
            x = x @ layer.kernel
            x += layer.bias
            np.maximum(x, 0.0, out=x)
        logit = x @ self.deep.kernel + self.deep.bias
        if wide is not None:
            logit = wide + logit
        return logit.reshape(-1).astype(np.float64)

    @classmethod
    def of(cls, model: keras.Model) -> NumpyForward | None:
        """The compiled network, or None when `model` is not the architecture this knows."""
        try:
            compiled = cls._extract(model)
        except (KeyError, ValueError) as exc:
            log.info("ranker not compiled to numpy (%s): TensorFlow scores it", exc)
            return None
        if compiled is not None and not compiled._agrees_with(model):
            log.warning("numpy ranker disagrees with Keras: TensorFlow scores it")
            return None
        return compiled

    @classmethod
    def _extract(cls, model: keras.Model) -> NumpyForward | None:
        layers = {layer.name: layer for layer in model.layers}
        unknown = {type(layer).__name__ for layer in model.layers} - KNOWN_LAYERS
        if unknown:
            raise ValueError(f"unknown layers {sorted(unknown)}")
        embeddings = None
        if "embeddings" in layers:
            embeddings = np.asarray(layers["embeddings"].get_weights()[0], dtype=np.float32)
        hidden = []
        i = 0
        while f"hidden_{i}" in layers:
            hidden.append(_dense(layers[f"hidden_{i}"], "relu"))
            i += 1
        deep = _dense(layers["deep_logit"], "linear")
        wide = _dense(layers["wide_logit"], "linear") if "wide_logit" in layers else None
        logit = type(layers["logit"]).__name__
        if logit != ("Add" if wide is not None else "Identity"):
            raise ValueError(f"logit layer is {logit}")
        dense = sum(type(layer).__name__ == "Dense" for layer in model.layers)
        if dense != len(hidden) + 1 + (wide is not None):
            raise ValueError("dense layers outside the known architecture")
        return cls(embeddings, tuple(hidden), deep, wide)

    def _agrees_with(self, model: keras.Model) -> bool:
        """Same logits as Keras (to SELF_CHECK_TOLERANCE) on random inputs of the model's shape."""
        numeric_width = int(model.input["numeric"].shape[-1])
        categorical_width = int(model.input["categorical"].shape[-1])
        rng = np.random.default_rng(0)
        numeric = rng.normal(size=(SELF_CHECK_ROWS, numeric_width)).astype(np.float32)
        categories = len(self.embeddings) if self.embeddings is not None else 1
        categorical = rng.integers(
            0, categories, size=(SELF_CHECK_ROWS, categorical_width), dtype=np.int32
        )
        logit_model = keras.Model(model.inputs, model.get_layer("logit").output)
        expected = np.asarray(
            logit_model({"numeric": numeric, "categorical": categorical}, training=False)
        ).reshape(-1)
        got = self(numeric, categorical)
        return bool(np.max(np.abs(got - expected), initial=0.0) <= SELF_CHECK_TOLERANCE)


def _dense(layer: keras.layers.Layer, activation: str) -> Dense:
    name = getattr(layer.activation, "__name__", str(layer.activation))
    if name != activation:
        raise ValueError(f"{layer.name} has activation {name}, expected {activation}")
    kernel, bias = layer.get_weights()
    return Dense(
        np.ascontiguousarray(kernel, dtype=np.float32),
        np.asarray(bias, dtype=np.float32),
        relu=activation == "relu",
    )
