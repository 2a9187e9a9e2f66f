"""Errors and warnings of the toolkit: one base class, data on the instance, advice in the text."""

from __future__ import annotations


class AnyECGError(Exception):
    """Base class of every error this toolkit raises on purpose."""


class RecordError(AnyECGError, ValueError):
    """A record could not be read or does not hold usable ECG (missing, empty, too short, bad lead)."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class PreprocessingError(AnyECGError, ValueError):
    """Input that the canonical preprocessing refuses (wrong rate, non-finite samples, too short)."""


class LabelSpecError(AnyECGError, ValueError):
    """A label spec that is not valid; the message names the offending field."""


class ModelFileError(AnyECGError, ValueError):
    """A model file that cannot be used (truncated, not TFLite, unsupported preprocessing)."""


class AnyECGWarning(UserWarning):
    """A recoverable problem (for example non-finite samples replaced by zeros); it is also counted."""


class SinkError(AnyECGError, RuntimeError):
    """A sink that cannot be opened or written (an unreachable MQTT broker, a bad sink spec)."""


class SourceError(AnyECGError, RuntimeError):
    """A source that cannot be opened (no such device, no supported profile, bleak missing)."""

    def __init__(self, message: str, device: str | None = None):
        super().__init__(f"{device}: {message}" if device else message)
        self.device = device
