"""Instance-norm statistics smoothed across video frames: less flicker from any model, at no extra pass.

A style network normalises every frame with that frame's own instance-norm statistics, so a small
change between frames (noise, motion, a car entering) shifts every layer's means and variances and the
whole picture's colours and textures pulse with them. Here frame t is normalised instead with a running
average of the statistics of the frames before it (the exported graph takes external statistics, as it
does for tiles), and the statistics that frame t computes in the same pass are folded into the average
for frame t+1. A scene cut (the frame's statistics far from the average, or a pass that overflows, as
after a fade from black) restarts the average from the new frame, stylized again with its own statistics.

No torch: numpy and the :class:`~fastnst.runtime.stylizer.Stylizer` only.
"""

from __future__ import annotations

import numpy as np

from fastnst.runtime.imageio import to_uint8
from fastnst.runtime.stylizer import ModelError, Stylizer

MOMENTUM = 0.9  # weight of the running average per frame: a time constant of about 10 frames
CUT = 0.5  # relative change of the statistics (see stats_change) taken for a scene cut


def check_momentum(momentum: float, what: str = "momentum") -> None:
    """Refuse a momentum outside [0, 1) (1 would never take a new frame in), naming ``what``."""
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"{what}={momentum}: expected a momentum from 0 up to (not including) 1")


def smooth_stats(running: np.ndarray | None, frame: np.ndarray, momentum: float) -> np.ndarray:
    """The running average after one more frame: ``momentum * running + (1 - momentum) * frame``
    (``frame`` itself when there is no average yet). A new array; neither input is changed."""
    check_momentum(momentum)
    if running is None:
        return np.array(frame, dtype=np.float32, copy=True)
    return (momentum * running + (1.0 - momentum) * frame).astype(np.float32)


def stats_change(running: np.ndarray, frame: np.ndarray) -> float:
    """How far a frame's statistics are from the running average: ``|frame - running| / |running|``
    (Euclidean norms over every layer's means and variances). Measured with the shipped wave model:
    0.004 to 0.06 between consecutive frames of the development clips; from a bikes.mp4 frame to a
    bigbuckbunny.mp4 frame normalised with the bikes frame's statistics, 1.4 to 4.7 (wave, udnie,
    starry_night)."""
    return float(np.linalg.norm(frame - running) / max(float(np.linalg.norm(running)), 1e-12))


class SmoothedStats:
    """Stylize the frames of one clip, in order, with instance-norm statistics smoothed over time.

    Args:
        stylizer: the model (any fastnst ONNX model: every export takes external statistics).
        momentum: weight of the running average per frame, in [0, 1); 0 normalises each frame with
            the statistics of the frame before it.
        cut: a frame whose statistics change by more than this (:func:`stats_change`) starts a new
            average, as at a scene cut; ``None`` never restarts.
        strength, preserve_colors: as for :meth:`Stylizer.stylize_arrays`.

    Call it with each frame (uint8 ``(H, W, 3)``), in order; it returns the stylized uint8 frame.
    Use one instance per clip (or :meth:`reset` between clips).
    """

    def __init__(
        self,
        stylizer: Stylizer,
        momentum: float = MOMENTUM,
        cut: float | None = CUT,
        strength: float = 1.0,
        preserve_colors: bool = False,
    ) -> None:
        check_momentum(momentum)
        if cut is not None and cut <= 0:
            raise ValueError(f"cut={cut}: expected a positive relative change (or None)")
        self.stylizer, self.momentum, self.cut = stylizer, momentum, cut
        self.strength, self.preserve_colors = strength, preserve_colors
        self.running: np.ndarray | None = None
        self.cuts = 0  # scene cuts detected so far

    def reset(self) -> None:
        """Forget the running average (a new clip)."""
        self.running = None

    def _stylize(self, frame: np.ndarray, stats: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        result, computed = self.stylizer.stylize_frame(frame, stats, self.strength, self.preserve_colors)
        return result.image, computed

    def _smoothed(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The frame stylized with the running average, or None where that is not this scene's: a change
        of statistics past ``cut``, or an overflow (a fade from black leaves near-zero variances, which
        blow up the next frame's activations)."""
        try:
            image, computed = self._stylize(frame, self.running)
        except ModelError:
            return None
        if self.cut is not None and stats_change(self.running, computed) > self.cut:
            return None
        return image, computed

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """The next frame, stylized with the statistics of the frames before it (its own for the first)."""
        smoothed = None if self.running is None else self._smoothed(frame)
        if smoothed is None:
            if self.running is not None:
                self.cuts += 1
            self.running = None  # a new scene: this frame with its own statistics
            smoothed = self._stylize(frame, None)
        image, computed = smoothed
        self.running = smooth_stats(self.running, computed, self.momentum)
        return to_uint8(image)
