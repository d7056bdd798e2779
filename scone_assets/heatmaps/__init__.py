"""GP heatmaps. The error lives here so that callers can catch it without
importing the compiled back-end."""


class HeatmapError(RuntimeError):
    """A unit's heatmaps cannot be made (settings mismatch, no usable band)."""
