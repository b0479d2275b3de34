"""Two local processes form one multi-host run (gloo on 127.0.0.1), 2 CPU devices each."""
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import ROOT
from engine_utils import leaves_with_paths

SCRIPT = r'''
import sys
sys.path.insert(0, 'tests')
import numpy as np
from fsig_jax.engine import parallel
port, pid, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
parallel.initialize_distributed(f'127.0.0.1:{port}', 2, pid, cpu_collectives=True)
import jax
assert jax.process_count() == 2 and jax.device_count() == 4, (jax.process_count(), jax.devices())
from engine_utils import leaves_with_paths, tiny_bundle, tiny_images
from test_engine_loop import tiny_config
from fsig_jax.engine import loop
from fsig_jax.run import host
c = tiny_config(3)
c.hparams.batch_size = 4
state, _ = loop.train(c, None, bundle=tiny_bundle(), images=tiny_images(8))
np.savez(out, **leaves_with_paths(host(state)))
print('OK', pid)
'''


def free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
  env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=2',
         'JAX_PLATFORMS': 'cpu'}
  port = free_port()
  outs = [str(tmp_path / f'p{i}.npz') for i in range(2)]
  procs = [subprocess.Popen([sys.executable, '-c', SCRIPT, str(port), str(i), outs[i]], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  results = [p.communicate(timeout=600) for p in procs]
  for p, (out, err) in zip(procs, results):
    assert p.returncode == 0, err[-4000:]
  a, b = (dict(np.load(o)) for o in outs)
  for k in a:  # every process holds the same replicated state
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)

  # The same run in this single process (1 device) agrees up to reduction order.
  sys.path.insert(0, os.path.join(ROOT, 'tests'))
  from engine_utils import tiny_bundle, tiny_images  # pylint: disable=g-import-not-at-top
  from fsig_jax.engine import loop  # pylint: disable=g-import-not-at-top
  from test_engine_loop import tiny_config  # pylint: disable=g-import-not-at-top
  c = tiny_config(3)
  c.hparams.batch_size = 4
  state, _ = loop.train(c, None, bundle=tiny_bundle(), images=tiny_images(8))
  single = leaves_with_paths(jax.device_get(state))
  worst = max(float(np.max(np.abs(single[k].astype(np.float64) - a[k]))) for k in a
              if a[k].dtype.kind == 'f')
  assert worst < 1e-4, worst
