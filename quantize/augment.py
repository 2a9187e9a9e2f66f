"""Augmentations a wearable's lead I will see, applied to the raw 500 Hz signal in mV.

They act *before* the canonical preprocessing, exactly where a device's real-world
variation enters: the student then learns to agree with the teacher on windows like the
ones it will be given.

* **sampling-rate jitter**: the wearable's clock runs a little fast or slow (crystal
  tolerance, resampling from 130 or 250 Hz), so the segment is stretched by ``1 + e``;
* **time shift**: the window starts anywhere within the segment's margin;
* **amplitude scaling**: electrode placement, skin contact and gain differ (log-uniform);
* **baseline wander**: breathing and movement, a few slow sinusoids below 0.7 Hz;
* **noise**: white sensor noise plus muscle (EMG) noise band-limited to 20-150 Hz;
* **mains hum**: a 50 or 60 Hz sinusoid of small amplitude;
* **polarity**: a watch worn on the other wrist or a chest strap put on the other way
  round reverses the lead, so the window is negated (off unless ``invert_p`` > 0).

:func:`mix_segments` adds one more kind of window for distillation: two records mixed,
``w * a + (1 - w) * b`` at equal power, then augmented. No wearable records such a thing;
it asks the teacher about inputs *between* the recordings of a small corpus, so the
student learns the teacher's function there too, not only at the recordings themselves
(function matching: Beyer L. et al., Knowledge distillation: a good teacher is patient
and consistent. CVPR 2022).

Every draw comes from the ``numpy.random.Generator`` the caller passes, so a seed fixes
the result.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from anyecg_edge.preprocess import TARGET_FS, WINDOW_SAMPLES

from .settings import checked_fields

__all__ = ["AugmentConfig", "augment_segment", "center_window", "mix_segments"]


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the augmentations; a probability of 0 switches one off.

    Attributes:
        rate_jitter: maximum relative sampling-rate error (0.02 = +-2 %).
        max_shift_s: maximum window start offset either way, in seconds.
        scale_range: (min, max) amplitude factor, drawn log-uniformly.
        wander_mv: maximum baseline-wander amplitude (mV).
        wander_p: probability of baseline wander.
        noise_mv: maximum white-noise standard deviation (mV).
        emg_mv: maximum muscle-noise standard deviation (mV).
        noise_p: probability of sensor and muscle noise.
        mains_mv: maximum mains-hum amplitude (mV).
        mains_p: probability of mains hum.
        invert_p: probability of a reversed lead (the window negated).
    """

    rate_jitter: float = 0.02
    max_shift_s: float = 0.5
    scale_range: tuple[float, float] = (0.5, 2.0)
    wander_mv: float = 0.3
    wander_p: float = 0.7
    noise_mv: float = 0.03
    emg_mv: float = 0.05
    noise_p: float = 0.7
    mains_mv: float = 0.05
    mains_p: float = 0.3
    invert_p: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale_range", tuple(float(v) for v in self.scale_range))
        if not 0 <= self.rate_jitter < 0.2:
            raise ValueError("rate_jitter must be in [0, 0.2)")
        if self.max_shift_s < 0:
            raise ValueError("max_shift_s must be >= 0")
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ValueError("scale_range must be (min, max) with 0 < min <= max")
        for name in ("wander_mv", "noise_mv", "emg_mv", "mains_mv"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("wander_p", "noise_p", "mains_p", "invert_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability")

    @property
    def margin_samples(self) -> int:
        """Samples a segment needs on each side of the window for shift and jitter."""
        stretch = int(np.ceil(self.rate_jitter * WINDOW_SAMPLES / 2))
        return int(np.ceil(self.max_shift_s * TARGET_FS)) + stretch + 1

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["scale_range"] = list(self.scale_range)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "AugmentConfig":
        return cls(**checked_fields(cls, data, "augmentation settings"))


def center_window(segment: np.ndarray, samples: int = WINDOW_SAMPLES) -> np.ndarray:
    """The un-augmented window: the centre ``samples`` of a raw segment."""
    segment = np.asarray(segment, dtype=np.float64)
    start = (segment.shape[-1] - samples) // 2
    if start < 0:
        raise ValueError(f"segment of {segment.shape[-1]} samples is shorter than a window of {samples}")
    return segment[..., start : start + samples]


def augment_segment(
    segment: np.ndarray, rng: np.random.Generator, config: AugmentConfig = AugmentConfig(),
    samples: int = WINDOW_SAMPLES, mains_hz: float = 50.0,
) -> np.ndarray:
    """One augmented raw window (``samples``,) in mV from a raw 500 Hz segment (1-D).

    The segment should be at least ``samples + 2 * config.margin_samples`` long; a shorter
    one gets a smaller shift and stretch range (never an out-of-range read).
    """
    x = np.asarray(segment, dtype=np.float64).reshape(-1)
    n = x.shape[0]
    if n < samples:
        raise ValueError(f"segment of {n} samples is shorter than a window of {samples}")
    # Sampling-rate jitter and time shift: read the window on a stretched, shifted time grid.
    stretch = 1.0 + rng.uniform(-config.rate_jitter, config.rate_jitter)
    span = (samples - 1) * stretch
    if span > n - 1:
        stretch, span = (n - 1) / (samples - 1), float(n - 1)
    slack = (n - 1 - span) / 2
    shift = rng.uniform(-1, 1) * min(slack, config.max_shift_s * TARGET_FS)
    start = slack + shift
    grid = start + np.arange(samples) * stretch
    w = np.interp(grid, np.arange(n), x)
    # Amplitude.
    lo, hi = config.scale_range
    w = w * np.exp(rng.uniform(np.log(lo), np.log(hi)))
    t = np.arange(samples) / TARGET_FS
    # Baseline wander.
    if rng.random() < config.wander_p:
        amp = rng.uniform(0, config.wander_mv)
        for _ in range(2):
            w = w + amp / 2 * np.sin(2 * np.pi * rng.uniform(0.05, 0.7) * t + rng.uniform(0, 2 * np.pi))
    # Sensor and muscle noise.
    if rng.random() < config.noise_p:
        w = w + rng.normal(0, rng.uniform(0, config.noise_mv), samples)
        emg = rng.normal(0, 1, samples)
        spectrum = np.fft.rfft(emg)
        freqs = np.fft.rfftfreq(samples, 1 / TARGET_FS)
        spectrum[(freqs < 20) | (freqs > 150)] = 0
        emg = np.fft.irfft(spectrum, samples)
        emg /= emg.std() + 1e-12
        # Muscle noise comes in bursts: modulate with a slow envelope.
        envelope = np.clip(np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t + rng.uniform(0, 2 * np.pi)), 0, None)
        w = w + rng.uniform(0, config.emg_mv) * emg * envelope
    # Mains hum.
    if rng.random() < config.mains_p:
        w = w + rng.uniform(0, config.mains_mv) * np.sin(2 * np.pi * mains_hz * t + rng.uniform(0, 2 * np.pi))
    # Reversed lead; drawn last and only when enabled, so the other draws of a seed stay the same.
    if config.invert_p and rng.random() < config.invert_p:
        w = -w
    return w


def mix_segments(
    segment: np.ndarray, partner: np.ndarray, rng: np.random.Generator, config: AugmentConfig = AugmentConfig(),
    samples: int = WINDOW_SAMPLES, min_weight: float = 0.5, mains_hz: float = 50.0,
) -> np.ndarray:
    """One augmented raw window of ``segment`` mixed with ``partner`` (1-D, same rate).

    The partner is scaled to the segment's standard deviation, the two are mixed with the
    segment's weight ``w`` drawn uniformly from ``[min_weight, 1]``, and the mixture is
    augmented like any segment (:func:`augment_segment`).
    """
    a = np.asarray(segment, dtype=np.float64).reshape(-1)
    b = np.asarray(partner, dtype=np.float64).reshape(-1)
    n = min(a.shape[0], b.shape[0])
    a, b = a[:n], b[:n]
    weight = rng.uniform(min_weight, 1.0)
    mixed = weight * a + (1 - weight) * (b - b.mean()) * (a.std() / max(b.std(), 1e-9))
    return augment_segment(mixed, rng, config, samples, mains_hz)
