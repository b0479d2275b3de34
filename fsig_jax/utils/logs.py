"""Logging set-up for command-line runs: our progress at INFO, libraries at WARNING."""
import logging

from absl import logging as absl_logging


def quiet_logs():
  """orbax/clu/jax log every file write at INFO; keep fsig-jax's lines only."""
  absl_logging.set_verbosity(absl_logging.WARNING)
  logging.getLogger('fsig_jax').setLevel(logging.INFO)
  absl_logging.get_absl_handler().setLevel(logging.INFO)
  absl_logging.use_absl_handler()
