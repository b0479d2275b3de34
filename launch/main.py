"""Train or adapt from a config file; `config.trainer` picks the trainer (fsig_jax.api.TRAINERS).

  python launch/main.py --config=configs/quickstart.py --workdir=runs/quickstart
  python launch/main.py --config=configs/offline.py:cdc,anime_sketch --workdir=runs/cdc_sketch
  python launch/main.py --config=configs/pretrain_anime64.py --workdir=runs/pretrain_anime64
  python launch/main.py --config=configs/pretrain_progan32.py --workdir=runs/pretrain_progan32

Other configs: configs/rick_afhq_cat.py, configs/adam_babies.py,
configs/paper_ffhq256.py:METHOD,TARGET (each file's docstring says what it runs
and which models and data it needs). Any field can be overridden, e.g.
--config.hparams.lr=0.001. Re-running the same command resumes from the newest
complete checkpoint in --workdir. Multi-host: on a TPU pod slice, under SLURM
or Open MPI (more than one task) every process joins the run by itself
(--distributed=auto, the default; --distributed=on forces it, off disables it);
elsewhere pass --coordinator=HOST:PORT --num_processes=N --process_id=I on every
host (on CPU add --cpu_collectives). --config.max_devices=N uses at most N devices.
"""
import logging
import os
import sys

from absl import flags

import jax

from fsig_jax import api
from fsig_jax import run as run_lib
from fsig_jax.engine import parallel
from fsig_jax.errors import FsigError, NonFiniteLossError
from fsig_jax.utils.cli import compile_cache, config_flags_parser, fail, run_main
from fsig_jax.utils.logs import quiet_logs

# configs/*.py import configs.common: make the repo root importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONFIG_HELP = ('experiment config file, FILE or FILE:ARG: configs/quickstart.py, '
               'configs/offline.py:METHOD,TARGET, configs/pretrain_anime64.py, ... '
               '(override fields with --config.FIELD=VALUE)')
WORKDIR = flags.DEFINE_string('workdir', None, 'where checkpoints, logs and samples go',
                              required=True)
COORD = flags.DEFINE_string('coordinator', None, 'multi-host: coordinator address HOST:PORT')
NPROC = flags.DEFINE_integer('num_processes', None, 'multi-host: number of processes')
PID = flags.DEFINE_integer('process_id', None, 'multi-host: this process index')
CPU_COLL = flags.DEFINE_bool('cpu_collectives', False, 'multi-host on CPU: use gloo collectives')
DIST = flags.DEFINE_enum('distributed', 'auto', ['auto', 'on', 'off'],
                         'join a multi-process run: auto = when --coordinator is given or a '
                         'TPU pod / SLURM / Open MPI environment is detected')


def main(argv):
  del argv
  quiet_logs()
  compile_cache()  # a rerun of the same config starts stepping without recompiling
  config = flags.FLAGS.config
  if config is None:
    fail('--config=configs/<name>.py is required (e.g. --config=configs/quickstart.py)')
  try:
    joined = parallel.start_processes(DIST.value, COORD.value, NPROC.value, PID.value,
                                      CPU_COLL.value)
    if joined:
      logging.getLogger('fsig_jax').info('process %d of %d (%s), %d devices in all', jax.process_index(),
                   jax.process_count(), joined, jax.device_count())
    api.train(config, WORKDIR.value)
  except NonFiniteLossError as e:  # a loss became NaN/inf: exit code 3
    fail(str(e), code=3)
  except FsigError as e:
    fail(str(e))
  if jax.process_index() == 0:
    print(run_lib.summary(WORKDIR.value), flush=True)


if __name__ == '__main__':
  run_main(main, flags_parser=config_flags_parser(CONFIG_HELP))
