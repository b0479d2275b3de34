"""Errors raised while reading official checkpoints.

Every message names the file, says what is wrong with it and how to fix it, so
a user never has to read a traceback from deep inside the unpickler.
"""


class CheckpointError(ValueError):
  """A checkpoint file is missing, damaged, unsupported or inconsistent."""


class UnsafePickleError(CheckpointError):
  """A pickle asked for a global outside the allow-list; nothing was executed."""
