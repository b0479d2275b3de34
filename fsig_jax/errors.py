"""The errors a user can cause, as one family: catch `FsigError` for all of them.

Every message names the problem (the file, field or value) and the fix, and
reads as one line, so a launcher prints `str(error)` and never a traceback
(fsig_jax/utils/cli.py `fail`). Each class also keeps the builtin base it had
before this module existed (ValueError, FloatingPointError), so older
`except ValueError` code still catches it. This module imports nothing from
fsig_jax: any layer may raise these without pulling in another.
"""


class FsigError(Exception):
  """An error a user can cause; its message names the problem and the fix and is
  printed as one line."""


class ConfigError(FsigError, ValueError):
  """A config value is missing, mistyped or inconsistent; the message says which."""


class CheckpointError(FsigError, ValueError):
  """A checkpoint file is missing, damaged, unsupported or inconsistent."""


class UnsafePickleError(CheckpointError):
  """A pickle asked for a global outside the allow-list; nothing was executed."""


class MissingNetworkError(CheckpointError):
  """The checkpoint lacks a network that was asked for (e.g. no D)."""


class DataError(FsigError, ValueError):
  """A user-facing data problem; the message names the path, the problem and the fix."""


class NonFiniteLossError(FsigError, FloatingPointError):
  """A loss term became NaN or inf; the message names the step and the term."""


class WriteError(FsigError, OSError):
  """A file or folder cannot be written (a file where a folder should be, no
  permission, a read-only or full disk); the message names the path and the fix."""


__all__ = ['FsigError', 'ConfigError', 'CheckpointError', 'UnsafePickleError',
           'MissingNetworkError', 'DataError', 'NonFiniteLossError', 'WriteError']
