"""Train or adapt from a config file.

  python launch/main.py --config=configs/tgan_anime_to_babies.py --workdir=runs/tgan
  python launch/main.py --config=configs/cdc_anime_to_sketches.py --config.steps=500 --workdir=...

Re-running the same command resumes from the newest complete checkpoint in
--workdir. Multi-host: pass --coordinator=HOST:PORT --num_processes=N
--process_id=I on every host (on CPU add --cpu_collectives).
"""
import os
import sys

from absl import app, flags
from ml_collections import config_flags

from fsig_jax.convert.errors import CheckpointError
from fsig_jax.data.images import DataError
from fsig_jax.engine import loop, parallel, progressive
from fsig_jax.utils.cli import fail
from fsig_jax.utils.logs import quiet_logs
from fsig_jax.engine.run_config import ConfigError

# configs/*.py import configs.common: make the repo root importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONFIG = config_flags.DEFINE_config_file('config', None, 'experiment config file',
                                         lock_config=True)
WORKDIR = flags.DEFINE_string('workdir', None, 'where checkpoints, logs and samples go',
                              required=True)
COORD = flags.DEFINE_string('coordinator', None, 'multi-host: coordinator address HOST:PORT')
NPROC = flags.DEFINE_integer('num_processes', None, 'multi-host: number of processes')
PID = flags.DEFINE_integer('process_id', None, 'multi-host: this process index')
CPU_COLL = flags.DEFINE_bool('cpu_collectives', False, 'multi-host on CPU: use gloo collectives')


def main(argv):
  del argv
  quiet_logs()
  if COORD.value:
    parallel.initialize_distributed(COORD.value, NPROC.value, PID.value, CPU_COLL.value)
  try:
    config = CONFIG.value
    if config is None:
      fail('--config=configs/<name>.py is required')
    config.to_dict()  # a config file that failed to load raises only when used
  except (OSError, AttributeError, KeyError, ValueError, TypeError) as e:
    fail(f'could not load --config: {_last_line(e)}')
  try:
    if 'progressive' in config:  # ProGAN pretraining (configs/pretrain_progan64.py)
      progressive.pretrain(config, WORKDIR.value)
    else:
      loop.train(config, WORKDIR.value)
  except (ConfigError, CheckpointError, DataError) as e:
    fail(str(e))
  except loop.NonFiniteLossError as e:
    fail(str(e), code=3)


def _last_line(e: BaseException) -> str:
  """The final 'XError: message' of an error text that may embed a traceback."""
  lines = [l.strip() for l in str(e).replace('\\n', '\n').splitlines() if l.strip()]
  if any(l.startswith('Traceback') for l in lines):
    lines = [l for l in lines if not l.startswith(('File ', 'Traceback', '^', '~'))]
    errors = [l for l in lines if l.split(':')[0].endswith(('Error', 'Exception'))]
    return errors[-1] if errors else lines[-1]
  return ' '.join(lines).replace("\\'", "'").strip("'")


def parse_flags(argv):
  """absl flag parsing, with config-file and override mistakes as one clear line."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    fail(f'{_last_line(e)} (pass --helpshort for the flags)')
  except (OSError, AttributeError, KeyError, ValueError, TypeError) as e:
    fail(f'could not load --config: {type(e).__name__}: {_last_line(e)}')


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
