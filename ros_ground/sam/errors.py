"""The one error type of SAM loading."""


class SamLoadError(ValueError):
    """A SAM spec, checkpoint or config that cannot be turned into a working model.

    A ValueError, so callers that treat bad input as such (a node's configure step) catch it.
    """
