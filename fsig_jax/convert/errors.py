"""Errors raised while reading official checkpoints (defined in fsig_jax/errors.py).

Every message names the file, says what is wrong with it and how to fix it, so
a user never has to read a traceback from deep inside the unpickler.
"""
# pylint: disable-next=unused-import (re-exported)
from fsig_jax.errors import CheckpointError, UnsafePickleError  # noqa: F401
