"""Errors a user can cause and fix: the message names the cause and the fix."""


class UserFacingError(Exception):
    """Raised for bad data, bad configuration or a failed download; printed without a traceback."""


class TrainingDiverged(Exception):
    """Raised from inside a fit when the training loss stops being finite."""
