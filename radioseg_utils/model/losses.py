"""Segmentation losses and pixel metrics for source / background masks.

Sources cover a small fraction of a radio image, so plain binary cross-entropy (BCE) is
dominated by easy background pixels. The losses here counter that imbalance:

- ``"bce"`` -- binary cross-entropy, mean over pixels;
- ``"dice"`` -- :class:`DiceLoss`, one minus the soft Dice coefficient of each cutout;
- ``"focal"`` -- focal loss of Lin et al. (2017), BCE down-weighted on easy pixels;
- ``"bce_dice"`` -- :class:`BCEDiceLoss`, a weighted sum of BCE and Dice.

A U-Net with a centre head (:mod:`radioseg_utils.postprocess.centres`) outputs two channels, the mask
and the centre heat map; :class:`MaskCentreLoss` applies one of the losses above to the
first and :class:`CentreFocalLoss`, the penalty-reduced focal loss of CenterNet (Zhou et
al. 2019), to the second.

All are Keras-serialisable, so a saved model reloads with its loss. Metrics
(:func:`keras_pixel_scores`) are IoU, precision and recall of the mask thresholded at 0.5.

Tensors are ``(batch, height, width, channels)``: ``y_true`` in [0, 1] (masks in {0, 1}),
``y_pred`` probabilities; metrics read the mask channel 0.

References
----------
Milletari, F., Navab, N. & Ahmadi, S.-A. 2016, "V-Net", 3DV, doi:10.1109/3DV.2016.79

Lin, T.-Y., Goyal, P., Girshick, R., He, K. & Dollar, P. 2017, "Focal Loss for Dense
Object Detection", ICCV, doi:10.1109/ICCV.2017.324

Zhou, X., Wang, D. & Krähenbühl, P. 2019, "Objects as Points", arXiv:1904.07850
"""

from __future__ import annotations

from radioseg_utils.model.backend import keras, ops
from radioseg_utils.model.config import LOSSES

__all__ = [
    "DICE_SMOOTH",
    "FOCAL_ALPHA",
    "FOCAL_GAMMA",
    "THRESHOLD",
    "SCORES",
    "PixelScore",
    "DiceLoss",
    "BCEDiceLoss",
    "CentreFocalLoss",
    "MaskCentreLoss",
    "CENTRE_ALPHA",
    "CENTRE_BETA",
    "CENTRE_PAIR_RADIUS",
    "dice_coefficient",
    "get_loss",
    "keras_pixel_scores",
]

#: Additive smoothing of the Dice ratio (pixels); keeps empty masks finite.
DICE_SMOOTH = 1.0
#: Focal-loss weight of the source class (background gets ``1 - alpha``), Lin et al.
FOCAL_ALPHA = 0.25
#: Focal-loss focusing exponent, Lin et al.
FOCAL_GAMMA = 2.0
#: Probability from which (>=) a pixel counts as source in the metrics.
THRESHOLD = 0.5
#: Focusing exponent of :class:`CentreFocalLoss` (CenterNet's alpha).
CENTRE_ALPHA = 2.0
#: Exponent of the penalty reduction near centres in :class:`CentreFocalLoss` (beta).
CENTRE_BETA = 4.0
#: Half-width (pixels) of the box in which two target centres make a close pair
#: (:class:`CentreFocalLoss` ``pair_beta``): the pixels between two centres up to 6 px
#: apart (3.6", 2.4 beams of B1) count.
CENTRE_PAIR_RADIUS = 3
#: Scores computed by :class:`PixelScore`.
SCORES: tuple[str, ...] = ("iou", "precision", "recall", "f1")


def dice_coefficient(y_true, y_pred, *, smooth: float = DICE_SMOOTH):
    """Soft Dice coefficient of each sample.

    ``(2 sum(t p) + smooth) / (sum(t) + sum(p) + smooth)``, summed over all axes but the
    first.

    Parameters
    ----------
    y_true, y_pred : tensor
        ``(batch, ...)`` masks and probabilities.
    smooth : float
        Additive smoothing; an empty truth with an empty prediction scores 1.

    Returns
    -------
    tensor
        ``(batch,)`` coefficients in [0, 1].
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    axes = tuple(range(1, len(y_pred.shape)))
    inter = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return (2.0 * inter + smooth) / (total + smooth)


@keras.saving.register_keras_serializable(package="radioseg")
class DiceLoss(keras.losses.Loss):
    """One minus the soft Dice coefficient of each cutout (Milletari et al. 2016).

    Parameters
    ----------
    smooth : float
        Additive smoothing, see :func:`dice_coefficient`.
    name : str
        Loss name shown in logs.
    **kwargs
        ``reduction`` and ``dtype`` of :class:`keras.losses.Loss`.
    """

    def __init__(self, smooth: float = DICE_SMOOTH, *, name: str = "dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smooth = float(smooth)

    def call(self, y_true, y_pred):
        return 1.0 - dice_coefficient(y_true, y_pred, smooth=self.smooth)

    def get_config(self) -> dict:
        return {**super().get_config(), "smooth": self.smooth}


@keras.saving.register_keras_serializable(package="radioseg")
class BCEDiceLoss(keras.losses.Loss):
    """``bce_weight * BCE + dice_weight * (1 - Dice)`` of each cutout.

    BCE is the mean over the pixels of the cutout, clipped as in Keras at 1e-7.

    Parameters
    ----------
    bce_weight, dice_weight : float
        Weights of the two terms.
    smooth : float
        Dice smoothing, see :func:`dice_coefficient`.
    name : str
        Loss name shown in logs.
    **kwargs
        ``reduction`` and ``dtype`` of :class:`keras.losses.Loss`.
    """

    def __init__(self, bce_weight: float = 1.0, dice_weight: float = 1.0,
                 smooth: float = DICE_SMOOTH, *, name: str = "bce_dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.bce_weight = float(bce_weight)
        self.dice_weight = float(dice_weight)
        self.smooth = float(smooth)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        bce = keras.losses.binary_crossentropy(y_true, y_pred)
        bce = ops.mean(bce, axis=tuple(range(1, len(bce.shape))))
        dice = 1.0 - dice_coefficient(y_true, y_pred, smooth=self.smooth)
        return self.bce_weight * bce + self.dice_weight * dice

    def get_config(self) -> dict:
        return {**super().get_config(), "bce_weight": self.bce_weight,
                "dice_weight": self.dice_weight, "smooth": self.smooth}


@keras.saving.register_keras_serializable(package="radioseg")
class CentreFocalLoss(keras.losses.Loss):
    """Penalty-reduced pixel focal loss of a centre heat map (CenterNet), per cutout.

    With ``y`` the target heat (1 at source centres, a Gaussian around them) and ``p`` the
    prediction, the loss of a cutout is
    ``-(sum_{y=1} (1-p)^a log p + sum_{y<1} (1-y)^b p^a log(1-p)) / max(1, N)``, ``N`` the
    number of centres in it: pixels near a centre are hardly penalised for firing.

    That reduction also spares a bright ridge between two close sources (with ``b = 4``
    a pixel next to a centre costs 2 % of a background pixel), so the network may draw a
    close pair as one blob with a shoulder. ``pair_beta`` gives the pixels that have two
    or more centres within ``pair_radius`` pixels (a box) their own, smaller exponent: a
    heat map that stays high between the two costs more there.

    Parameters
    ----------
    alpha, beta : float
        Focusing and penalty-reduction exponents.
    pair_beta : float, optional
        Penalty-reduction exponent near two or more centres (None: ``beta`` everywhere).
    pair_radius : int
        Half-width of the box that finds them, in pixels.
    name : str
        Loss name shown in logs.
    **kwargs
        ``reduction`` and ``dtype`` of :class:`keras.losses.Loss`.
    """

    def __init__(self, alpha: float = CENTRE_ALPHA, beta: float = CENTRE_BETA, *,
                 pair_beta: float | None = None, pair_radius: int = CENTRE_PAIR_RADIUS,
                 name: str = "centre_focal", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha, self.beta = float(alpha), float(beta)
        self.pair_beta = None if pair_beta is None else float(pair_beta)
        self.pair_radius = int(pair_radius)
        if self.pair_beta is not None and not self.pair_beta > 0:
            raise ValueError(f"pair_beta must be > 0, got {pair_beta!r}")
        if self.pair_radius < 1:
            raise ValueError(f"pair_radius must be >= 1 pixel, got {pair_radius!r}")

    def call(self, y_true, y_pred):
        y_pred = ops.clip(ops.convert_to_tensor(y_pred), 1e-6, 1.0 - 1e-6)
        y_true = ops.cast(y_true, y_pred.dtype)
        positive = ops.cast(y_true >= 0.999, y_pred.dtype)
        axes = tuple(range(1, len(y_pred.shape)))
        pos = positive * (1.0 - y_pred) ** self.alpha * ops.log(y_pred)
        neg = ((1.0 - positive) * self._reduction(y_true, positive) * y_pred ** self.alpha
               * ops.log(1.0 - y_pred))
        n = ops.maximum(ops.sum(positive, axis=axes), 1.0)
        return -(ops.sum(pos, axis=axes) + ops.sum(neg, axis=axes)) / n

    def _reduction(self, y_true, positive):
        """``(1 - y)**beta``, with ``pair_beta`` where two centres are near."""
        if self.pair_beta is None:
            return (1.0 - y_true) ** self.beta
        side = 2 * self.pair_radius + 1
        box = ops.ones((side, side, 1, 1), dtype=positive.dtype)
        near_pair = ops.conv(positive, box, strides=1, padding="same") >= 1.5
        return ops.where(near_pair, (1.0 - y_true) ** self.pair_beta,
                         (1.0 - y_true) ** self.beta)

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta,
                "pair_beta": self.pair_beta, "pair_radius": self.pair_radius}


@keras.saving.register_keras_serializable(package="radioseg")
class MaskCentreLoss(keras.losses.Loss):
    """Loss of a two-channel (mask, centre) output: ``mask loss + w * centre loss``.

    Parameters
    ----------
    mask_loss : str
        Name of the mask-channel loss, one of :data:`LOSSES`.
    centre_weight : float
        Weight ``w`` of :class:`CentreFocalLoss` on the centre channel.
    pair_beta : float, optional
        Its penalty-reduction exponent near close pairs of centres (None: none apart).
    name : str
        Loss name shown in logs.
    **kwargs
        ``reduction`` and ``dtype`` of :class:`keras.losses.Loss`.
    """

    def __init__(self, mask_loss: str = "bce_dice", centre_weight: float = 1.0, *,
                 pair_beta: float | None = None, name: str = "mask_centre", **kwargs):
        super().__init__(name=name, **kwargs)
        self.mask_loss, self.centre_weight = str(mask_loss), float(centre_weight)
        self.pair_beta = None if pair_beta is None else float(pair_beta)
        self._mask = get_loss(self.mask_loss, reduction=None)
        self._centre = CentreFocalLoss(pair_beta=self.pair_beta, reduction=None)

    def call(self, y_true, y_pred):
        mask = self._mask(y_true[..., :1], y_pred[..., :1])
        if len(mask.shape) > 1:  # Keras' BCE/focal give per-pixel values: mean per cutout
            mask = ops.mean(mask, axis=tuple(range(1, len(mask.shape))))
        return mask + self.centre_weight * self._centre(y_true[..., 1:2], y_pred[..., 1:2])

    def get_config(self) -> dict:
        return {**super().get_config(), "mask_loss": self.mask_loss,
                "centre_weight": self.centre_weight, "pair_beta": self.pair_beta}


def get_loss(name: str, **options) -> keras.losses.Loss:
    """Return the loss called ``name``, one of :data:`LOSSES`.

    Parameters
    ----------
    name : str
        ``"bce"``, ``"dice"``, ``"focal"`` or ``"bce_dice"``.
    **options
        Passed to the loss class: ``smooth`` (dice), ``alpha`` and ``gamma`` (focal,
        defaults :data:`FOCAL_ALPHA`, :data:`FOCAL_GAMMA`), ``bce_weight`` and
        ``dice_weight`` (bce_dice).

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`LOSSES`.

    Examples
    --------
    >>> get_loss("dice").name
    'dice'
    """
    key = str(name).strip().lower()
    if key == "bce":
        return keras.losses.BinaryCrossentropy(name="bce", **options)
    if key == "dice":
        return DiceLoss(**options)
    if key == "focal":
        options = {"alpha": FOCAL_ALPHA, "gamma": FOCAL_GAMMA, **options}
        return keras.losses.BinaryFocalCrossentropy(
            apply_class_balancing=True, name="focal", **options
        )
    if key == "bce_dice":
        return BCEDiceLoss(**options)
    raise ValueError(f"unknown loss {name!r}: expected one of {', '.join(LOSSES)}")


@keras.saving.register_keras_serializable(package="radioseg")
class PixelScore(keras.metrics.Metric):
    """IoU, precision, recall or F1 of the source class (channel 0) over all pixels seen.

    A pixel is predicted as source when its probability is ``>= threshold``. True
    positives (TP), false positives (FP) and false negatives (FN) are summed over every
    batch until :meth:`reset_state`, then ``iou = TP / (TP + FP + FN)``,
    ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``,
    ``f1 = 2 TP / (2 TP + FP + FN)``; an empty denominator gives 0.

    Parameters
    ----------
    score : str
        One of :data:`SCORES`.
    threshold : float
        Probability threshold.
    name : str, optional
        Name in Keras logs (default: ``score``).
    """

    def __init__(self, score: str = "iou", *, threshold: float = THRESHOLD,
                 name: str | None = None, **kwargs):
        if score not in SCORES:
            raise ValueError(f"unknown pixel score {score!r}: expected one of {', '.join(SCORES)}")
        super().__init__(name=name or score, **kwargs)
        self.score = score
        self.threshold = float(threshold)
        self.counts = self.add_variable(shape=(3,), initializer="zeros", name="tp_fp_fn")

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth = ops.reshape(ops.cast(y_true[..., :1], "float32") > 0.5, (-1,))
        pred = ops.reshape(ops.cast(y_pred[..., :1], "float32") >= self.threshold, (-1,))
        tp = ops.sum(ops.cast(truth & pred, "float32"))
        fp = ops.sum(ops.cast(~truth & pred, "float32"))
        fn = ops.sum(ops.cast(truth & ~pred, "float32"))
        self.counts.assign_add(ops.stack([tp, fp, fn]))

    def result(self):
        tp, fp, fn = self.counts[0], self.counts[1], self.counts[2]
        num, den = {
            "iou": (tp, tp + fp + fn),
            "precision": (tp, tp + fp),
            "recall": (tp, tp + fn),
            "f1": (2.0 * tp, 2.0 * tp + fp + fn),
        }[self.score]
        return ops.divide_no_nan(num, den)

    def reset_state(self):
        self.counts.assign(ops.zeros((3,), dtype="float32"))

    def get_config(self) -> dict:
        return {**super().get_config(), "score": self.score, "threshold": self.threshold}


def keras_pixel_scores(*, threshold: float = THRESHOLD) -> list[keras.metrics.Metric]:
    """Return fresh IoU, precision and recall :class:`PixelScore` metrics for ``compile``.

    They accumulate over all pixels of an epoch, so the logged values are pixel-level
    scores of the whole epoch, not means of batch scores.
    """
    return [PixelScore(score, threshold=threshold) for score in ("iou", "precision", "recall")]
