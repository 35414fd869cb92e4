"""The feed ranker network: embeddings for the categoricals, an MLP, P(engage) out.

Every categorical column has its own range of rows in one shared embedding table (the
preprocessing adds the offsets), which keeps the saved model free of custom or Lambda layers.

The last dense layer is named `logit` so explanations can work on the additive (logit) scale;
the sigmoid is a separate layer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
import numpy as np

from ml.ranking.explored_rows import DEFAULT as EXPLORED_ROWS_DEFAULT
from ml.ranking.explored_rows import check_mode
from ml.ranking.preprocessing import Preprocessing


@dataclass
class RankerParams:
    # chosen on two generated platforms (300 users x 4 days, seeds 11 and 23; docs/benchmarks.md):
    # with ~13k training rows and ~200 inputs the network overfits within a few epochs, so it is
    # small and heavily regularised, and stops on validation log loss (smoother than AUC on a few
    # hundred positives): holdout AUC 0.676 -> 0.683 (seed 11) and 0.688 -> 0.701 (seed 23), and
    # a fifth of the spread across model seeds (docs/benchmarks.md)
    hidden: tuple[int, ...] = (32,)
    embedding_width: int = 4
    wide: bool = True
    dropout: float = 0.5
    l2: float = 1e-2
    learning_rate: float = 2e-3
    batch_size: int = 512
    epochs: int = 60
    patience: int = 5  # epochs without validation improvement before stopping
    seed: int = 7
    monitor: str = "val_loss"
    # how the exploration slice enters the network's training (ml.ranking.explored_rows)
    explored_rows: str = EXPLORED_ROWS_DEFAULT

    def __post_init__(self) -> None:
        check_mode(self.explored_rows)

    def as_dict(self) -> dict[str, object]:
        values = asdict(self)
        values["hidden"] = ",".join(str(h) for h in self.hidden)
        return values


def build_model(spec: Preprocessing, params: RankerParams, base_rate: float = 0.5) -> keras.Model:
    """The network; its output bias starts at the training label rate's logit (`base_rate`), so
    the first epochs learn signal instead of the prior."""
    keras.utils.set_random_seed(params.seed)
    numeric = keras.Input(shape=(spec.numeric_width,), name="numeric", dtype="float32")
    categorical = keras.Input(shape=(len(spec.categorical),), name="categorical", dtype="int32")
    x = numeric
    if spec.categorical:
        embedded = keras.layers.Embedding(
            max(spec.category_count, 1), params.embedding_width, name="embeddings"
        )(categorical)
        flat = keras.layers.Flatten(name="embeddings_flat")(embedded)
        x = keras.layers.Concatenate(name="inputs")([numeric, flat])
    inputs = x
    regulariser = keras.regularizers.L2(params.l2)
    for i, units in enumerate(params.hidden):
        x = keras.layers.Dense(
            units, activation="relu", kernel_regularizer=regulariser, name=f"hidden_{i}"
        )(x)
        if params.dropout:
            x = keras.layers.Dropout(params.dropout, name=f"dropout_{i}")(x)
    prior = float(
        np.log(np.clip(base_rate, 1e-6, 1 - 1e-6) / (1 - np.clip(base_rate, 1e-6, 1 - 1e-6)))
    )
    deep = keras.layers.Dense(
        1, bias_initializer=keras.initializers.Constant(prior), name="deep_logit"
    )(x)
    if params.wide:
        # the wide part: a logistic regression on the same inputs, so the network starts from
        # what a linear model already knows and the MLP only has to add the interactions
        wide = keras.layers.Dense(1, kernel_regularizer=regulariser, name="wide_logit")(inputs)
        logit = keras.layers.Add(name="logit")([wide, deep])
    else:
        logit = keras.layers.Identity(name="logit")(deep)
    probability = keras.layers.Activation("sigmoid", name="probability")(logit)
    model = keras.Model({"numeric": numeric, "categorical": categorical}, probability)
    model.compile(
        optimizer=keras.optimizers.Adam(params.learning_rate),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
    )
    return model


def fit_model(
    spec: Preprocessing,
    params: RankerParams,
    train: dict[str, np.ndarray],
    train_labels: np.ndarray,
    validation: dict[str, np.ndarray],
    validation_labels: np.ndarray,
    verbose: int = 0,
    callbacks: list[keras.callbacks.Callback] | None = None,
    train_weights: np.ndarray | None = None,
    validation_weights: np.ndarray | None = None,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Train with early stopping on a validation metric (best weights restored); seeded.
    Sample weights (None: every row 1) weight the loss and the validation metrics."""
    rate = np.average(train_labels, weights=train_weights)
    model = build_model(spec, params, base_rate=float(rate))
    stop = keras.callbacks.EarlyStopping(
        monitor=params.monitor,
        mode="max" if params.monitor.endswith("auc") else "min",
        patience=params.patience,
        restore_best_weights=True,
    )
    validation_data: tuple[object, ...] = (validation, validation_labels.astype(np.float32))
    if validation_weights is not None:
        validation_data = (*validation_data, validation_weights)
    history = model.fit(
        train,
        train_labels.astype(np.float32),
        sample_weight=train_weights,
        validation_data=validation_data,
        batch_size=params.batch_size,
        epochs=params.epochs,
        shuffle=True,
        callbacks=[stop, *(callbacks or [])],
        verbose=verbose,
    )
    return model, {k: [float(v) for v in vs] for k, vs in history.history.items()}
