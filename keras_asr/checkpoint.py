"""The training checkpoint: everything a run needs to resume after a restart, on this machine or another.

`EpochCheckpoint` writes it after every epoch; `train` restores it. What it records must match to resume: the
model's architecture (`architecture`) and its loss (`loss_of`).

Weights are copied through NumPy: on JAX, assigning one variable's array to another shares its buffer.
"""

import hashlib
import json
import math
import os
import time

import keras
import numpy as np

from keras_asr import atomic


def copy_weights(model):
    return [np.array(w, copy=True) for w in model.get_weights()]


def is_broken(model):
    """Whether `NaNGuard` marked the run broken: then nothing saves it."""
    return bool(getattr(model, "_asr_broken", False))


# Not keras.callbacks.BackupAndRestore: one latest weights file (overwritten in place) and the epoch, no best
# weights, schedule state, learning rate or history; it also saves NaN epochs and by default deletes it all at the end.
class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the training state after every epoch, to resume after a restart.

    Writes in `directory`: `latest-<epoch>.weights.h5` (model and optimizer variables), `best-<epoch>.weights.h5`
    (the schedule's best weights), `state.json` (epoch, learning rate, schedule counters, history, the names of
    those two files and the model's architecture). Every file is written beside, synced and renamed, and
    `state.json` goes last and names the weights it belongs to, so a kill or a full disk at any moment leaves
    the previous checkpoint whole. Resuming with a model of another architecture is a one-line error.

    Args:
        directory: output folder.
        schedule: the `RefinementSchedule` whose state to save, or None.
        validation: JSON-ready description of the validation set the schedule's metric is measured on (e.g.
            `{"pairs": 1000, "sample": "first"}`); `restore` hands back the recorded one, so that a run resumed
            with another validation set can re-score its best weights instead of comparing across metrics.
    """

    # Runs checkpointed before the validation set was recorded took the first pairs of the split; how many is
    # unknown (None), so such a run re-scores its best weights once when it resumes.
    LEGACY_VALIDATION = {"pairs": None, "sample": "first"}

    def __init__(self, directory, schedule=None, validation=None):
        super().__init__()
        self.directory = directory
        self.schedule = schedule
        self.validation = validation
        self.restored_validation = None
        self.validation_changes = []
        self.history = []
        os.makedirs(directory, exist_ok=True)

    @property
    def state_path(self):
        return os.path.join(self.directory, "state.json")

    def _path(self, name):
        return os.path.join(self.directory, name)

    def on_epoch_end(self, epoch, logs=None):
        if is_broken(self.model):
            return
        logs = {k: float(keras.ops.convert_to_numpy(v)) for k, v in (logs or {}).items()}
        if not all(math.isfinite(v) for k, v in logs.items() if k == "loss"):
            return
        self.history.append({"epoch": epoch + 1, "time": time.time(), **logs})
        previous = self._state().get("files", {})
        files = {"latest": f"latest-{epoch + 1:05d}.weights.h5", "best": previous.get("best")}
        _save_weights_atomic(self.model, self._path(files["latest"]))
        state = {
            "epoch": epoch + 1,
            "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
            "history": self.history,
            "architecture": architecture(self.model),
            "loss": loss_of(self.model),
            "files": files,
        }
        if self.validation is not None:
            state["validation"] = self.validation
        if self.validation_changes:
            state["validation_changes"] = self.validation_changes
        if self.schedule is not None:
            state["schedule"] = self.schedule.get_state()
            if self.schedule.best_epoch == epoch:
                files["best"] = f"best-{epoch + 1:05d}.weights.h5"
                _save_weights_atomic(self.model, self._path(files["best"]))
        with atomic.written_beside(self.state_path) as temporary:
            with open(temporary, "w") as f:
                json.dump(state, f, indent=1)
        # The files of the previous state go only once the new state names their successors.
        for name in set(previous.values()) - set(files.values()) - {None}:
            if os.path.exists(self._path(name)):
                os.remove(self._path(name))

    def _state(self):
        if not os.path.exists(self.state_path):
            return {}
        try:
            with open(self.state_path) as f:
                return json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{self.state_path} cannot be read ({e}): delete the checkpoint folder "
                             f"{self.directory} to start afresh.") from e

    def restore(self, model):
        """Loads the latest checkpoint into `model` (compiled); returns the number of finished epochs (0: none).

        Restores the optimizer state, learning rate, history and the schedule's counters and best weights;
        `restored_validation` becomes the validation set the checkpoint was measured on.
        """
        state = self._state()
        if not state:
            return 0
        recorded = state.get("architecture")
        if recorded is not None and recorded != architecture(model):
            raise ValueError(
                f"The checkpoint in {self.directory} was written by another model ({recorded['name']}, "
                f"{recorded['weights']} weights), not this {architecture(model)['name']} "
                f"({architecture(model)['weights']} weights): use another output folder, or the run's own options.")
        recorded = state.get("loss")  # runs before `--loss` trained with the hinge and recorded none
        if recorded is not None and recorded != loss_of(model):
            raise ValueError(
                f"The checkpoint in {self.directory} was trained with the loss {_loss_name(recorded)}, not "
                f"{_loss_name(loss_of(model))}: use another output folder, or the run's own --loss.")
        files = state.get("files", {"latest": "latest.weights.h5", "best": "best.weights.h5"})  # older runs
        # The optimizer's variables must exist before its saved state can be loaded into them.
        model.optimizer.build(model.trainable_variables)
        if self.schedule is not None and "schedule" in state:
            self.schedule.set_state(state["schedule"])
            if files.get("best") and os.path.exists(self._path(files["best"])):
                model.load_weights(self._path(files["best"]))
                self.schedule.best_weights = copy_weights(model)
        model.load_weights(self._path(files["latest"]))
        model.optimizer.learning_rate.assign(state["learning_rate"])
        self.history = state["history"]
        self.restored_validation = state.get("validation", self.LEGACY_VALIDATION)
        self.validation_changes = state.get("validation_changes", [])
        return state["epoch"]


def _save_weights_atomic(model, path):
    with atomic.written_beside(path, suffix=".weights.h5") as temporary:
        model.save_weights(temporary)


def architecture(model):
    """What a checkpoint must match to be resumed: the model's variant and the shapes of its weights, in order.

    (Not the variables' paths: Keras numbers unnamed layers per process, so two builds of one model differ.)
    """
    shapes = [tuple(w.shape) for w in model.weights]
    variant = {key: getattr(model, key, None) for key in ("frames", "attention", "head")}
    name = ", ".join(f"{key} {value}" for key, value in variant.items() if value is not None) or model.name
    digest = hashlib.sha256(repr(shapes).encode()).hexdigest()[:16]
    return {"name": name, "weights": len(shapes), "digest": digest}


def loss_of(model):
    """The compiled loss of `model` with its arguments, as JSON (None: not compiled with one loss object)."""
    loss = getattr(model, "loss", None)
    if not isinstance(loss, keras.losses.Loss):
        return None
    return {"class_name": type(loss).__name__, "config": {k: v for k, v in loss.get_config().items()
                                                          if k not in ("name", "reduction", "dtype")}}


def _loss_name(recorded):
    arguments = ", ".join(f"{k}={v}" for k, v in recorded["config"].items())
    return f"{recorded['class_name']}({arguments})"
