"""Settings of a training run: :class:`TrainConfig` and the named :data:`TRAIN_PROFILES`.

A config holds parameters only (model, loss, optimiser, and a description of the data:
band, integration, normalisation, cutout size); data goes to
:func:`radioseg_utils.model.train.train_model`. The config is stored in checkpoints and in the
sidecar of the saved model.

Examples
--------
>>> config = get_profile("quick", epochs=2)
>>> config.depth, config.tile_size, config.epochs
(3, 128, 2)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from radioseg_utils.core.bands import INTEGRATIONS, get_band
from radioseg_utils.model.shapes import CAE_SIZE, VAE_SIZE, check_input_size

__all__ = [
    "MODEL_KINDS",
    "LR_SCHEDULES",
    "PRECISIONS",
    "INPUT_SIZES",
    "TrainConfig",
    "TRAIN_PROFILES",
    "get_profile",
    "LOSSES",
]

#: Model architectures :func:`radioseg_utils.model.train.build_model` knows.
MODEL_KINDS: tuple[str, ...] = ("unet", "cae", "vae")

#: Names accepted by :func:`get_loss`.
LOSSES: tuple[str, ...] = ("bce", "dice", "focal", "bce_dice")
#: Learning-rate schedules: halve on a validation plateau, cosine decay, or constant.
LR_SCHEDULES: tuple[str, ...] = ("plateau", "cosine", "constant")
#: Mixed precision: on only when a GPU is visible ("auto"), always, or never.
PRECISIONS: tuple[str, ...] = ("auto", "on", "off")
#: Default cutout side per model kind, in pixels.
INPUT_SIZES = {"unet": 256, "cae": CAE_SIZE, "vae": VAE_SIZE}


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of one training run; stored in checkpoints and the model sidecar.

    Attributes
    ----------
    model : str
        One of :data:`MODEL_KINDS`.
    depth, base_filters, batch_norm, dropout : int, int, bool, float
        Architecture (see :func:`radioseg_utils.model.architectures.build_unet`); the VAE uses
        ``depth`` and ``base_filters`` only.
    latent_dim, kl_weight : int, float
        VAE latent dimension and KL weight.
    loss : str
        One of :data:`LOSSES` (of the mask channel).
    centre_head, centre_weight : bool, float
        U-Net with a centre head (:mod:`radioseg_utils.postprocess.centres`), trained on
        ``(mask, centre)`` targets with ``loss + centre_weight * centre focal loss``.
    centre_pair_beta : float, optional
        Penalty-reduction exponent of the centre focal loss near close pairs of centres
        (:class:`radioseg_utils.model.losses.CentreFocalLoss` ``pair_beta``); None: the
        loss's ``beta`` everywhere.
    learning_rate : float
        Initial Adam learning rate.
    epochs : int
        Maximum number of epochs.
    batch_size, gpu_batch_size : int
        Cutouts per batch on CPU, and when a GPU is visible.
    patience : int
        Epochs without improvement of the monitored loss before early stopping.
    lr_schedule : str
        One of :data:`LR_SCHEDULES`.
    mixed_precision : str
        One of :data:`PRECISIONS`.
    seed : int
        Seed of weights, dropout and shuffling.
    profile : str
        Name of the profile this config came from.
    band, integration : str, int
        SDC1 band and integration time (h) of the training images (of the first set when
        several are mixed).
    bands : tuple of str
        Every band of the training images (empty: ``(band,)``); a model is applied only
        to the bands it was trained on.
    normalisation : str
        Name of the input normalisation of the training cutouts.
    tile_size : int, optional
        Side of the training cutouts in pixels; ``None`` takes :data:`INPUT_SIZES`.
    training_set : str
        Identifier of the training set (e.g. the shard folder name).
    tensorboard : bool
        Write TensorBoard logs.
    init_weights : str
        Model file whose weights start the run (a warm start: training continued with a
        new optimiser and schedule, e.g. on a CPU after a GPU run stopped by its time
        budget): a path, or the name of a model in the package's ``pretrained/`` folder
        (``"unet_B1.keras"``); the architecture must be this config's. Empty: seeded
        random weights.
    """

    model: str = "unet"
    depth: int = 4
    base_filters: int = 16
    batch_norm: bool = True
    dropout: float = 0.05
    latent_dim: int = 16
    kl_weight: float = 1.0
    loss: str = "bce_dice"
    centre_head: bool = False
    centre_weight: float = 1.0
    centre_pair_beta: float | None = None
    learning_rate: float = 1e-3
    epochs: int = 30
    batch_size: int = 8
    gpu_batch_size: int = 32
    patience: int = 5
    lr_schedule: str = "plateau"
    mixed_precision: str = "auto"
    seed: int = 0
    profile: str = "custom"
    band: str = "B1"
    integration: int = 1000
    bands: tuple[str, ...] = ()
    normalisation: str = "minmax"
    tile_size: int | None = None
    training_set: str = ""
    tensorboard: bool = True
    init_weights: str = ""

    def __post_init__(self) -> None:
        for name, allowed in (("model", MODEL_KINDS), ("loss", LOSSES),
                              ("lr_schedule", LR_SCHEDULES),
                              ("mixed_precision", PRECISIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"TrainConfig.{name}={getattr(self, name)!r}: expected one of "
                    f"{', '.join(allowed)}"
                )
        for name in ("depth", "base_filters", "latent_dim", "epochs", "batch_size",
                     "gpu_batch_size", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"TrainConfig.learning_rate must be > 0, got {self.learning_rate!r}")
        if self.integration not in INTEGRATIONS:
            raise ValueError(f"TrainConfig.integration={self.integration!r} h: expected one "
                             f"of {INTEGRATIONS}")
        object.__setattr__(self, "band", get_band(self.band).name)
        bands = tuple(dict.fromkeys(get_band(b).name for b in (self.band, *self.bands)))
        object.__setattr__(self, "bands", bands)
        if self.centre_head and self.model != "unet":
            raise ValueError(f"TrainConfig.centre_head needs model='unet', got {self.model!r}")
        if not self.centre_weight > 0:
            raise ValueError(f"TrainConfig.centre_weight must be > 0, got {self.centre_weight!r}")
        if self.centre_pair_beta is not None and not (self.centre_head
                                                      and self.centre_pair_beta > 0):
            raise ValueError("TrainConfig.centre_pair_beta needs centre_head and a value "
                             f"> 0, got {self.centre_pair_beta!r}")
        if self.tile_size is None:
            object.__setattr__(self, "tile_size", INPUT_SIZES[self.model])
        check_input_size((self.tile_size, self.tile_size, 1), multiple=self.size_multiple,
                         what="TrainConfig.tile_size")

    @property
    def size_multiple(self) -> int:
        """Factor that cutout sides must be multiples of (``2**depth`` for the U-Net)."""
        return 2**self.depth if self.model == "unet" else 1

    @property
    def targets(self) -> tuple[str, ...]:
        """Target channels (:data:`radioseg_utils.data.shards.TARGET_CHANNELS`) the model learns."""
        return ("mask", "centre") if self.centre_head else ("mask",)

    @property
    def input_size(self) -> int | None:
        """Fixed cutout side of the CAE/VAE, ``None`` for the fully convolutional U-Net."""
        return None if self.model == "unet" else self.tile_size

    def replace(self, **changes: Any) -> TrainConfig:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-serialisable dict."""
        return {**dataclasses.asdict(self), "bands": list(self.bands)}

    @staticmethod
    def completed(saved: dict[str, Any]) -> dict[str, Any]:
        """A config dict saved by an older version, with the fields it did not know yet.

        A field added later (such as ``init_weights``) takes its default, which is what
        the older version did, so older checkpoints and records still compare equal.

        Examples
        --------
        >>> TrainConfig.completed({"depth": 3})["init_weights"]
        ''
        """
        defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
        return {**{k: v for k, v in defaults.items() if k not in saved}, **saved}


#: Named settings: ``quick`` trains in minutes on 2 CPU cores, ``full`` is for a GPU.
TRAIN_PROFILES: dict[str, TrainConfig] = {
    "quick": TrainConfig(depth=3, base_filters=8, epochs=8, batch_size=8, gpu_batch_size=16,
                         patience=3, tile_size=128, mixed_precision="off", profile="quick"),
    "full": TrainConfig(depth=4, base_filters=16, epochs=60, batch_size=8, gpu_batch_size=32,
                        patience=8, tile_size=256, lr_schedule="cosine", profile="full"),
}


def get_profile(name: str, **overrides: Any) -> TrainConfig:
    """Return the :data:`TRAIN_PROFILES` entry ``name`` with some fields overridden.

    Raises
    ------
    ValueError
        If ``name`` is not a profile.
    """
    if name not in TRAIN_PROFILES:
        raise ValueError(f"unknown training profile {name!r}: expected one of "
                         f"{', '.join(TRAIN_PROFILES)}")
    return TRAIN_PROFILES[name].replace(**overrides)
