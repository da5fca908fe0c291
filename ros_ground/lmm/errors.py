"""The LMM's errors: a model that cannot be loaded, a prompt that would change the image tokens."""

from __future__ import annotations

from ros_ground.errors import InputError


class ModelLoadError(ValueError):
    """The requested model could not be found or loaded."""


class BadPromptError(InputError):
    """The prompt would change the image tokens the model sees."""
