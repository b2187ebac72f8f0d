"""The error of :mod:`regionedit.io`: :class:`ImageInputError`."""

from __future__ import annotations


class ImageInputError(ValueError):
    """Bad user input to an edit: an image that cannot be used, or an unusable instruction.

    The message names the problem and the fix. Subclass of ``ValueError``, so
    ``except ValueError`` also catches it.
    """
