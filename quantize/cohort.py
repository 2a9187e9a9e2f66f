"""A synthetic single-lead (lead I) ECG cohort whose morphology follows serum potassium and calcium.

Every beat is a sum of Gaussian waves (P, Q, R, S, ST, T, U) placed relative to the R peak,
in the spirit of ECGSYN (McSharry et al. 2003), written directly in time rather than as an
ODE so that each electrolyte effect is one explicit, documented parameter change:

* **hyperkalaemia** (K above about 5 mmol/L): taller, narrower, symmetric ("peaked") T; from
  about 6 mmol/L a flatter, wider P and a longer PR; from about 6.5 mmol/L a wider QRS;
* **hypokalaemia** (K below about 3.8 mmol/L): flatter T, a growing U wave, ST depression;
* **calcium**: the ST segment (and with it the QT interval) shortens as total calcium rises
  and lengthens as it falls; the T wave itself is unchanged.

Every effect is a smooth function of the lab value (a softplus ramp, never a step) and acts
on subject-specific baselines, so the same potassium looks different in different people.
Subjects also differ in heart rate and its variability, amplitudes, the projection of the QRS
and T axes on lead I, ectopic beats and noise (baseline wander, muscle noise, mains hum,
electrode motion, amplitude saturation). Records are generated at the native rate of a
wearable (130 Hz like a Polar H10, 250 Hz or 500 Hz) in mV.

The whole cohort comes from one ``numpy`` generator seeded once: the same
:class:`CohortConfig` gives a byte-identical cohort. ``docs/cohort.md`` lists every effect
with its size and the physiology it follows.

References:
    McSharry P.E. et al. A dynamical model for generating synthetic electrocardiogram signals.
    IEEE Trans Biomed Eng 50(3):289-294, 2003.
    Diercks D.B. et al. Electrocardiographic manifestations: electrolyte abnormalities.
    J Emerg Med 27(2):153-160, 2004.
    Levis J.T. ECG diagnosis: hyperkalemia. Perm J 17(1):69, 2013.
    Surawicz B., Knilans T.K. Chou's Electrocardiography in Clinical Practice, 6th ed., ch. 22.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anyecg_edge.errors import AnyECGError

from .settings import checked_fields

__all__ = [
    "CohortConfig",
    "CohortError",
    "CohortSummary",
    "LAB_COLUMNS",
    "SPLITS",
    "cohort_hash",
    "draw_calcium",
    "draw_potassium",
    "electrolyte_effects",
    "generate_cohort",
    "generate_record",
    "write_cohort",
]

SPLITS = ("train", "val", "test")
#: The columns of ``labs.csv``: path, subject, split, rate, the two labs, then what is worth inspecting.
LAB_COLUMNS = (
    "file_path",
    "subject_id",
    "split",
    "fs",
    "potassium",
    "calcium",
    "duration_s",
    "heart_rate_bpm",
    "mains_hz",
    "ectopic_beats",
    "noise_mv",
    "saturated",
    "qrs_axis_deg",
)


class CohortError(AnyECGError, ValueError):
    """A cohort configuration that cannot be generated, or an output folder that is in the way."""


@dataclass(frozen=True)
class CohortConfig:
    """What to generate. Every field has a physiologically plausible default.

    Lab values are drawn from a three-part mixture per subject (normal, low tail, high tail)
    and vary around the subject's value from visit to visit. The tails are heavier than in
    an unselected emergency-department population so that abnormal values are not too rare
    to learn; set the ``*_weight`` fields to change that.
    """

    seed: int = 0
    subjects: int = 100
    #: Mean records per subject (1 + Poisson(mean - 1)), each with its own lab values.
    records_per_subject: float = 1.5
    #: Record duration range in seconds (uniform, whole seconds).
    duration_s: tuple[float, float] = (30.0, 60.0)
    #: Native sampling rates (Hz) and how often each is used.
    rates: tuple[int, ...] = (130, 250, 500)
    rate_weights: tuple[float, ...] = (0.4, 0.3, 0.3)
    #: Mains frequencies and how often each is used.
    mains_hz: tuple[int, ...] = (50, 60)
    mains_weights: tuple[float, ...] = (0.5, 0.5)
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    # Potassium (mmol/L): normal component, low tail (below 3.6) and high tail (above 5.0).
    potassium_mean: float = 4.1
    potassium_sd: float = 0.38
    hypokalemia_weight: float = 0.14
    hyperkalemia_weight: float = 0.16
    potassium_range: tuple[float, float] = (2.3, 8.5)
    # Total calcium (mg/dL): normal component, low tail (below 8.8) and high tail (above 10.2).
    calcium_mean: float = 9.4
    calcium_sd: float = 0.4
    hypocalcemia_weight: float = 0.14
    hypercalcemia_weight: float = 0.12
    calcium_range: tuple[float, float] = (6.0, 14.0)
    #: Visit-to-visit SD of a subject's labs (potassium mmol/L, calcium mg/dL).
    visit_sd: tuple[float, float] = (0.3, 0.3)
    #: Multiplies every electrolyte effect; 0 makes the ECG independent of the labs.
    effect_scale: float = 1.0
    #: Multiplies every noise amplitude; 0 gives clean ECG.
    noise_scale: float = 1.0
    #: Fraction of records clipped at the device's input range.
    saturation_fraction: float = 0.05

    def __post_init__(self) -> None:
        for name in ("duration_s", "rates", "rate_weights", "mains_hz", "mains_weights",
                     "potassium_range", "calcium_range", "visit_sd"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.subjects < 3:
            raise CohortError("a cohort needs at least 3 subjects (one per split)")
        if self.records_per_subject < 1:
            raise CohortError("records_per_subject is a mean of at least 1")
        lo, hi = self.duration_s
        if not 10 <= lo <= hi:
            raise CohortError(f"duration_s must be a range (min, max) with min >= 10 s, not {self.duration_s}")
        if len(self.rates) != len(self.rate_weights) or not self.rates or min(self.rates) < 100:
            raise CohortError("rates need one weight each and must be at least 100 Hz")
        if len(self.mains_hz) != len(self.mains_weights) or not set(self.mains_hz) <= {50, 60}:
            raise CohortError("mains_hz holds 50 and/or 60, with one weight each")
        if 2 * max(self.mains_hz) >= min(self.rates):
            raise CohortError("every rate must be above twice the mains frequency")
        if not (0 <= self.val_fraction and 0 <= self.test_fraction and self.val_fraction + self.test_fraction < 1):
            raise CohortError("val_fraction and test_fraction must be >= 0 and sum to less than 1")
        for name in ("hypokalemia_weight", "hyperkalemia_weight", "hypocalcemia_weight", "hypercalcemia_weight",
                     "saturation_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise CohortError(f"{name} must be in [0, 1]")
        if self.hypokalemia_weight + self.hyperkalemia_weight > 1 or self.hypocalcemia_weight + self.hypercalcemia_weight > 1:
            raise CohortError("tail weights of one lab must sum to at most 1")
        if self.effect_scale < 0 or self.noise_scale < 0:
            raise CohortError("effect_scale and noise_scale must be >= 0")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "CohortConfig":
        return cls(**checked_fields(cls, data, "cohort setting(s)", CohortError))


@dataclass(frozen=True)
class CohortSummary:
    """What :func:`write_cohort` wrote."""

    path: Path
    subjects: int
    records: int
    sha256: str
    counts: dict

    def to_dict(self) -> dict:
        return {"path": str(self.path), "subjects": self.subjects, "records": self.records,
                "sha256": self.sha256, "counts": self.counts}


# --------------------------------------------------------------------------------------------
# Lab values


def _mixture(rng: np.random.Generator, n: int, mean: float, sd: float, w_low: float, w_high: float,
             low_start: float, low_scale: float, high_start: float, high_shape: float, high_scale: float,
             bounds: tuple[float, float]) -> np.ndarray:
    """Normal core with an exponential low tail and a gamma high tail, clipped to ``bounds``."""
    part = rng.choice(3, size=n, p=[1 - w_low - w_high, w_low, w_high])
    core = rng.normal(mean, sd, n)
    low = low_start - rng.exponential(low_scale, n)
    high = high_start + rng.gamma(high_shape, high_scale, n)
    values = np.where(part == 0, core, np.where(part == 1, low, high))
    return np.clip(values, *bounds)


def draw_potassium(rng: np.random.Generator, n: int, config: CohortConfig = CohortConfig()) -> np.ndarray:
    """Serum potassium (mmol/L) of ``n`` subjects: normal core, hypokalaemic and hyperkalaemic tails."""
    return _mixture(rng, n, config.potassium_mean, config.potassium_sd, config.hypokalemia_weight,
                    config.hyperkalemia_weight, 3.6, 0.35, 5.0, 1.6, 0.55, config.potassium_range)


def draw_calcium(rng: np.random.Generator, n: int, config: CohortConfig = CohortConfig()) -> np.ndarray:
    """Total serum calcium (mg/dL) of ``n`` subjects: normal core, low and high tails."""
    return _mixture(rng, n, config.calcium_mean, config.calcium_sd, config.hypocalcemia_weight,
                    config.hypercalcemia_weight, 8.8, 0.55, 10.2, 1.5, 0.6, config.calcium_range)


# --------------------------------------------------------------------------------------------
# Electrolyte effects


def _ramp(x: float | np.ndarray, width: float) -> float | np.ndarray:
    """Smooth ``max(0, x)``: softplus with a knee of ``width``."""
    return width * np.logaddexp(0.0, np.asarray(x, dtype=np.float64) / width)


def electrolyte_effects(potassium: float, calcium: float, scale: float = 1.0) -> dict[str, float]:
    """How much each wave changes at these lab values (multipliers and shifts; 1 / 0 = none).

    Args:
        potassium: serum potassium, mmol/L.
        calcium: total serum calcium, mg/dL.
        scale: multiplies every effect (0 = no effect).

    Returns:
        ``t_amp``, ``t_width`` (T amplitude and width multipliers), ``t_symmetry`` (0 =
        the subject's asymmetric T, 1 = symmetric), ``p_amp``, ``p_width``, ``pr_ms`` (PR
        lengthening), ``qrs_width``, ``u_mv`` (added U amplitude), ``st_mv`` (ST shift),
        ``st_ms`` (ST segment lengthening, negative = shorter), ``hr`` (heart-rate multiplier).
    """
    high = float(_ramp(potassium - 5.0, 0.25)) * scale  # mmol/L above ~5.0
    very_high = float(_ramp(potassium - 6.0, 0.25)) * scale  # above ~6.0
    extreme = float(_ramp(potassium - 6.5, 0.25)) * scale  # above ~6.5
    low = float(_ramp(3.8 - potassium, 0.2)) * scale  # below ~3.8
    return {
        "t_amp": math.exp(0.55 * high - 1.0 * low),
        "t_width": 1.0 / (1.0 + 0.45 * high),
        "t_symmetry": 1.0 - math.exp(-1.5 * high),
        "p_amp": math.exp(-1.1 * very_high + 0.15 * low),
        "p_width": 1.0 + 0.25 * very_high,
        "pr_ms": 40.0 * very_high + 10.0 * low,
        "qrs_width": 1.0 + 0.35 * extreme,
        "u_mv": 0.09 * low,
        "st_mv": -0.06 * low,
        "st_ms": -32.0 * (calcium - 9.4) * scale,
        "hr": 1.0 - 0.06 * extreme,
    }


# --------------------------------------------------------------------------------------------
# Subjects and records


def _subjects(rng: np.random.Generator, config: CohortConfig) -> dict[str, np.ndarray]:
    """Per-subject parameters, drawn in one vectorised pass."""
    n = config.subjects
    ectopic = rng.random(n) < 0.3
    return {
        "hr": np.clip(rng.normal(74, 12, n), 48, 120),
        "rsa": rng.uniform(0.01, 0.07, n),
        "lf": rng.uniform(0.005, 0.03, n),
        "rr_jitter": rng.uniform(0.005, 0.02, n),
        "resp_hz": rng.uniform(0.15, 0.33, n),
        "gain": rng.lognormal(0.0, 0.3, n),
        "qrs_axis": np.clip(rng.normal(45, 30, n), -45, 120),
        "t_axis_offset": rng.normal(0, 20, n),
        "qrs_mv": rng.lognormal(np.log(1.3), 0.25, n),
        "t_mv": rng.lognormal(np.log(0.32), 0.3, n),
        "p_mv": rng.lognormal(np.log(0.12), 0.25, n),
        "u_mv": rng.uniform(0.0, 0.03, n),
        "q_ratio": rng.uniform(0.0, 0.15, n),
        "pr_ms": np.clip(rng.normal(155, 18, n), 110, 210),
        "qrs_ms": np.clip(rng.normal(92, 8, n), 72, 118),
        "qtc_ms": np.clip(rng.normal(405, 16, n), 360, 460),
        "t_sigma_ms": np.clip(rng.normal(48, 6, n), 34, 66),
        "t_asymmetry": rng.uniform(1.25, 1.7, n),
        "pvc_per_min": np.where(ectopic, rng.exponential(1.0, n), 0.0),
        "pac_per_min": np.where(rng.random(n) < 0.25, rng.exponential(1.0, n), 0.0),
        "pvc_polarity": rng.choice([-1.0, 1.0], n),
        "muscle": rng.lognormal(np.log(0.012), 0.6, n),
        "motion_per_min": rng.exponential(0.5, n),
        "k_base": draw_potassium(rng, n, config),
        "ca_base": draw_calcium(rng, n, config),
    }


def _assign_splits(rng: np.random.Generator, config: CohortConfig) -> np.ndarray:
    """Split names per subject: a seeded permutation, cut by the fractions, each split non-empty."""
    n = config.subjects
    order = rng.permutation(n)
    n_test = max(1, round(config.test_fraction * n)) if config.test_fraction else 0
    n_val = max(1, round(config.val_fraction * n)) if config.val_fraction else 0
    split = np.full(n, "train", dtype=object)
    split[order[:n_test]] = "test"
    split[order[n_test : n_test + n_val]] = "val"
    return split


def _beat_times(rng: np.random.Generator, duration: float, hr: float, s: dict, i: int) -> tuple[np.ndarray, np.ndarray]:
    """R-peak times (s) and beat kinds (0 sinus, 1 premature atrial, 2 premature ventricular)."""
    rr_mean = 60.0 / hr
    n_max = int((duration + 2) / rr_mean * 1.3) + 4
    t_grid = np.arange(n_max) * rr_mean
    phase_resp, phase_lf = rng.uniform(0, 2 * np.pi, 2)
    rr = rr_mean * (
        1
        + s["rsa"][i] * np.sin(2 * np.pi * s["resp_hz"][i] * t_grid + phase_resp)
        + s["lf"][i] * np.sin(2 * np.pi * 0.1 * t_grid + phase_lf)
        + rng.normal(0, s["rr_jitter"][i], n_max)
    )
    p_pvc = s["pvc_per_min"][i] * rr_mean / 60
    p_pac = s["pac_per_min"][i] * rr_mean / 60
    u = rng.random(n_max)
    kinds = np.where(u < p_pvc, 2, np.where(u < p_pvc + p_pac, 1, 0))
    kinds[0] = 0
    intervals = rr.copy()
    # A premature beat comes early; after a PVC the pause is compensatory (two RR in all).
    early = np.where(kinds == 2, 0.62, np.where(kinds == 1, 0.75, 1.0))
    intervals = rr * early
    after_pvc = np.roll(kinds == 2, 1)
    after_pvc[0] = False
    intervals = np.where(after_pvc, rr + np.roll(rr * (1 - early), 1), intervals)
    times = -rng.uniform(0, rr_mean) + np.cumsum(intervals)
    keep = times < duration + 1.0
    return times[keep], kinds[keep]


def _beat_waves(times: np.ndarray, kinds: np.ndarray, s: dict, i: int, fx: dict, gain: float,
                rng: np.random.Generator) -> np.ndarray:
    """Gaussian waves (centre s, amplitude mV, sigma left s, sigma right s), one row per wave."""
    n = len(times)
    rr = np.diff(times, prepend=times[0] - 60.0 / s["hr"][i])
    rr = np.clip(rr, 0.3, 2.0)
    axis = np.deg2rad(s["qrs_axis"][i])
    t_axis = axis + np.deg2rad(s["t_axis_offset"][i])
    cos_axis = math.cos(axis)
    qrs = s["qrs_mv"][i] * gain
    r_amp = qrs * (0.55 + 0.45 * cos_axis)
    s_amp = -qrs * (0.12 + 0.38 * (1 - cos_axis))
    q_amp = -qrs * s["q_ratio"][i] * max(cos_axis, 0.0)
    t_amp = s["t_mv"][i] * gain * max(math.cos(t_axis), 0.15) * fx["t_amp"]
    p_amp = s["p_mv"][i] * gain * fx["p_amp"]

    qrs_s = s["qrs_ms"][i] * fx["qrs_width"] / 1000
    pr_s = (s["pr_ms"][i] + fx["pr_ms"]) / 1000
    p_sigma = 0.018 * fx["p_width"]
    # Repolarisation follows the RR of the preceding interval (Fridericia: QT ~ RR^(1/3)).
    rate_factor = np.cbrt(rr)
    t_sigma_base = s["t_sigma_ms"][i] / 1000 * fx["t_width"]
    asym = 1 + (s["t_asymmetry"][i] - 1) * (1 - fx["t_symmetry"])
    t_left = t_sigma_base * asym * np.sqrt(rate_factor)
    t_right = t_sigma_base / asym * np.sqrt(rate_factor)
    qt = s["qtc_ms"][i] / 1000 * rate_factor
    t_centre = qt - qrs_s / 2 - 2.5 * t_right
    j_point = qrs_s / 2
    # The calcium effect moves the T wave (and U) along the ST segment, never into the QRS.
    t_centre = np.maximum(t_centre + fx["st_ms"] / 1000, j_point + 1.6 * t_left)
    u_centre = t_centre + 2.5 * t_right + 0.07
    st_centre = (j_point + t_centre) / 2

    pac = kinds == 1
    pvc = kinds == 2
    p_scale = np.where(pac, rng.uniform(-0.6, 0.7), 1.0) * (~pvc)
    q_w = 0.09 * qrs_s
    rows = [
        # P (absent before a PVC; inverted or flattened for a PAC)
        (times - qrs_s / 2 - pr_s + 2.5 * p_sigma, p_amp * p_scale, p_sigma, p_sigma),
        # Q, R, S (a PVC has a wide complex of its own polarity)
        (times - 0.36 * qrs_s, q_amp * ~pvc, q_w, q_w),
        (times, np.where(pvc, s["pvc_polarity"][i] * 1.4 * qrs, r_amp), np.where(pvc, 0.3 * qrs_s, 0.11 * qrs_s),
         np.where(pvc, 0.3 * qrs_s, 0.11 * qrs_s)),
        (times + 0.36 * qrs_s, s_amp * ~pvc, 0.1 * qrs_s, 0.1 * qrs_s),
        # ST segment shift
        (times + st_centre, np.full(n, fx["st_mv"] * gain) * ~pvc, 0.04 * np.ones(n), 0.04 * np.ones(n)),
        # T (discordant and wide after a PVC)
        (times + np.where(pvc, t_centre + 0.04, t_centre),
         np.where(pvc, -s["pvc_polarity"][i] * 0.6 * qrs * 0.5, t_amp), np.where(pvc, t_left * 1.3, t_left),
         np.where(pvc, t_right * 1.6, t_right)),
        # U
        (times + u_centre, np.full(n, (s["u_mv"][i] + fx["u_mv"]) * gain) * ~pvc, 0.04 * np.ones(n), 0.04 * np.ones(n)),
    ]
    return np.stack([np.stack([np.broadcast_to(np.asarray(c, dtype=np.float64), n) for c in row], axis=1)
                     for row in rows]).reshape(-1, 4)


def _render(waves: np.ndarray, n_samples: int, fs: float) -> np.ndarray:
    """Sum asymmetric Gaussians on a sample grid, each evaluated only within 4 sigma of its centre."""
    half = int(math.ceil(4 * waves[:, 2:].max() * fs)) + 1
    start = np.round(waves[:, 0] * fs).astype(np.int64) - half
    idx = start[:, None] + np.arange(2 * half + 1)[None, :]
    dt = idx / fs - waves[:, :1]
    sigma = np.where(dt < 0, waves[:, 2:3], waves[:, 3:4])
    values = waves[:, 1:2] * np.exp(-0.5 * (dt / sigma) ** 2)
    inside = (idx >= 0) & (idx < n_samples)
    return np.bincount(idx[inside], weights=values[inside], minlength=n_samples)[:n_samples]


def _noise(rng: np.random.Generator, n_samples: int, fs: float, mains: float, s: dict, i: int,
           scale: float) -> np.ndarray:
    """Baseline wander, muscle noise, mains hum and electrode-motion artefacts (mV)."""
    t = np.arange(n_samples) / fs
    duration = n_samples / fs
    wander = rng.lognormal(np.log(0.08), 0.5) * np.sin(2 * np.pi * s["resp_hz"][i] * t + rng.uniform(0, 2 * np.pi))
    for _ in range(3):
        wander += rng.lognormal(np.log(0.05), 0.6) * np.sin(2 * np.pi * rng.uniform(0.03, 0.5) * t + rng.uniform(0, 2 * np.pi))
    # Muscle noise: differenced white noise (broadband, high-frequency weighted) in bursts.
    white = rng.normal(0, 1, n_samples + 1)
    emg = np.diff(white) / math.sqrt(2)
    bursts = np.full(n_samples, 0.4)
    for centre in rng.uniform(0, duration, rng.poisson(duration / 20)):
        bursts += 2.5 * np.exp(-0.5 * ((t - centre) / rng.uniform(0.3, 1.5)) ** 2)
    emg *= s["muscle"][i] * bursts
    hum = rng.lognormal(np.log(0.02), 0.8) * np.sin(2 * np.pi * mains * t + rng.uniform(0, 2 * np.pi))
    # Electrode motion: a step that decays back to the baseline, with a short transient.
    motion = np.zeros(n_samples)
    for onset in rng.uniform(0, duration, rng.poisson(s["motion_per_min"][i] * duration / 60)):
        step = rng.normal(0, 0.5)
        tau = rng.uniform(0.3, 1.5)
        after = t >= onset
        motion[after] += step * np.exp(-(t[after] - onset) / tau)
        motion += rng.normal(0, 0.3) * np.exp(-0.5 * ((t - onset) / 0.05) ** 2)
    return scale * (wander + emg + hum + motion)


def generate_record(rng: np.random.Generator, subjects: dict, i: int, potassium: float, calcium: float,
                    fs: float, mains: float, duration: float, config: CohortConfig) -> tuple[np.ndarray, dict]:
    """One lead-I record of subject ``i`` at ``fs`` Hz (float32 mV) and its generation parameters."""
    fx = electrolyte_effects(potassium, calcium, config.effect_scale)
    hr = float(np.clip(subjects["hr"][i] * math.exp(rng.normal(0, 0.07)) * fx["hr"], 40, 150))
    gain = subjects["gain"][i] * math.exp(rng.normal(0, 0.08))
    times, kinds = _beat_times(rng, duration, hr, subjects, i)
    waves = _beat_waves(times, kinds, subjects, i, fx, gain, rng)
    n_samples = int(round(duration * fs))
    clean = _render(waves, n_samples, fs)
    noise = _noise(rng, n_samples, fs, mains, subjects, i, config.noise_scale)
    x = clean + noise
    saturated = bool(rng.random() < config.saturation_fraction)
    if saturated:
        limit = float(np.quantile(np.abs(x), rng.uniform(0.97, 0.995)))
        x = np.clip(x, -limit, limit)
    x = np.round(x, 3)  # 1 uV resolution
    in_window = (times >= 0) & (times < duration)
    params = {
        "heart_rate_bpm": round(hr, 1),
        "ectopic_beats": int(np.count_nonzero(kinds[in_window])),
        "noise_mv": round(float(noise.std()), 4),
        "saturated": int(saturated),
    }
    return x.astype(np.float32), params


def generate_cohort(config: CohortConfig = CohortConfig()) -> Iterable[tuple[str, np.ndarray, dict]]:
    """Yield ``(file_name, signal, lab_row)`` for every record, in a fixed order.

    ``lab_row`` has the keys of :data:`LAB_COLUMNS`. Deterministic given ``config``.
    """
    rng = np.random.default_rng(config.seed)
    s = _subjects(rng, config)
    split = _assign_splits(rng, config)
    n_records = 1 + rng.poisson(config.records_per_subject - 1, config.subjects)
    width = len(str(config.subjects - 1))
    rates = np.asarray(config.rates)
    rate_p = np.asarray(config.rate_weights, dtype=float) / sum(config.rate_weights)
    mains_p = np.asarray(config.mains_weights, dtype=float) / sum(config.mains_weights)
    for i in range(config.subjects):
        subject = f"S{i:0{width}d}"
        for visit in range(n_records[i]):
            potassium = float(np.clip(s["k_base"][i] + rng.normal(0, config.visit_sd[0]), *config.potassium_range))
            calcium = float(np.clip(s["ca_base"][i] + rng.normal(0, config.visit_sd[1]), *config.calcium_range))
            potassium, calcium = round(potassium, 1), round(calcium, 1)  # as a lab reports them
            fs = int(rng.choice(rates, p=rate_p))
            mains = int(rng.choice(np.asarray(config.mains_hz), p=mains_p))
            duration = float(rng.integers(int(config.duration_s[0]), int(config.duration_s[1]) + 1))
            signal, params = generate_record(rng, s, i, potassium, calcium, fs, mains, duration, config)
            name = f"{subject}_{visit}.npy"
            row = {
                "file_path": f"records/{name}",
                "subject_id": subject,
                "split": split[i],
                "fs": fs,
                "potassium": potassium,
                "calcium": calcium,
                "duration_s": duration,
                "heart_rate_bpm": params["heart_rate_bpm"],
                "mains_hz": mains,
                "ectopic_beats": params["ectopic_beats"],
                "noise_mv": params["noise_mv"],
                "saturated": params["saturated"],
                "qrs_axis_deg": round(float(s["qrs_axis"][i]), 1),
            }
            yield name, signal, row


def _npy_bytes(signal: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, signal, allow_pickle=False)
    return buffer.getvalue()


def cohort_hash(folder: str | Path) -> str:
    """sha256 over ``labs.csv`` and every record file (name and bytes), in sorted order."""
    folder = Path(folder)
    digest = hashlib.sha256()
    files = [folder / "labs.csv"] + sorted((folder / "records").glob("*.npy"))
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def write_cohort(out: str | Path, config: CohortConfig = CohortConfig(), label_spec_path: str | Path | None = None,
                 overwrite: bool = False, progress: Callable[[int], None] | None = None) -> CohortSummary:
    """Generate the cohort into ``out``: ``records/*.npy``, ``labs.csv``, ``cohort.json``, ``label_spec.json``.

    Everything is written into a temporary folder beside ``out`` that is renamed into place
    only when complete, so a failure never leaves a partial cohort.

    Args:
        out: the folder to create.
        config: what to generate.
        label_spec_path: label spec to copy in (default: the packaged demo electrolyte spec).
        overwrite: replace an existing ``out``.
        progress: called with the number of records written so far.

    Raises:
        CohortError: ``out`` exists and ``overwrite`` is false.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise CohortError(f"{out} already exists; pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        (tmp / "records").mkdir()
        rows = []
        for name, signal, row in generate_cohort(config):
            (tmp / "records" / name).write_bytes(_npy_bytes(signal))
            rows.append(row)
            if progress:
                progress(len(rows))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=LAB_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        (tmp / "labs.csv").write_text(text.getvalue())
        spec_src = Path(label_spec_path) if label_spec_path else Path(__file__).parent / "recipes" / "demo_electrolytes.json"
        shutil.copyfile(spec_src, tmp / "label_spec.json")
        digest = cohort_hash(tmp)
        counts = _counts(rows)
        meta = {"config": config.to_dict(), "sha256": digest, "subjects": config.subjects,
                "records": len(rows), "counts": counts}
        (tmp / "cohort.json").write_text(json.dumps(meta, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return CohortSummary(out, config.subjects, len(rows), digest, counts)


def _counts(rows: list[dict]) -> dict:
    """Records per split and how many are abnormal, for the cohort's own summary."""
    counts: dict = {}
    for split in SPLITS:
        part = [r for r in rows if r["split"] == split]
        k = np.array([r["potassium"] for r in part]) if part else np.zeros(0)
        ca = np.array([r["calcium"] for r in part]) if part else np.zeros(0)
        counts[split] = {
            "records": len(part),
            "subjects": len({r["subject_id"] for r in part}),
            "potassium_gt_5.5": int((k > 5.5).sum()),
            "potassium_lt_3.5": int((k < 3.5).sum()),
            "calcium_gt_10.5": int((ca > 10.5).sum()),
            "calcium_lt_8.5": int((ca < 8.5).sum()),
        }
    return counts
