"""Pod-ready launch: managed clusters are joined by themselves (explicit flags win),
and a config may use fewer devices than are visible (RICK's batch of 2 on 8 cores)."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from fsig_jax.engine import parallel, run_config


@pytest.mark.parametrize('env,found', [
    ({}, None),
    ({'SLURM_JOB_ID': '17', 'SLURM_NTASKS': '4'}, 'SLURM'),
    ({'SLURM_JOB_ID': '17', 'SLURM_NTASKS': '1'}, None),  # one task: a plain run
    ({'SLURM_JOB_ID': '17'}, None),
    ({'OMPI_MCA_orte_hnp_uri': 'x', 'OMPI_COMM_WORLD_SIZE': '2'}, 'Open MPI (mpirun)'),
    ({'TPU_WORKER_HOSTNAMES': 'w0,w1,w2,w3'}, 'a multi-host TPU slice'),
    ({'TPU_WORKER_HOSTNAMES': 'localhost'}, None),  # a single-host TPU VM
    ({'JAX_COORDINATOR_ADDRESS': '10.0.0.1:1234'}, 'a JAX coordinator (JAX_COORDINATOR_ADDRESS)'),
])
def test_detect_cluster(env, found):
  assert parallel.detect_cluster(env) == found


@pytest.fixture
def calls(monkeypatch):
  got = []
  monkeypatch.setattr(parallel, 'initialize_distributed', lambda *a: got.append(a))
  return got


def test_auto_joins_a_detected_cluster_with_jax_defaults(calls):
  slurm = {'SLURM_JOB_ID': '3', 'SLURM_NTASKS': '8'}
  assert parallel.start_processes('auto', env=slurm) == 'SLURM'
  assert calls == [(None, None, None, False)]  # jax reads SLURM's variables itself


def test_explicit_flags_win_and_off_disables(calls):
  slurm = {'SLURM_JOB_ID': '3', 'SLURM_NTASKS': '8'}
  assert parallel.start_processes('auto', 'h:1', 2, 1, True, env=slurm) == 'coordinator h:1'
  assert parallel.start_processes('off', env=slurm) is None
  assert parallel.start_processes('auto', env={}) is None
  assert parallel.start_processes('on', env={}) == 'requested (--distributed=on)'
  assert calls == [('h:1', 2, 1, True), (None, None, None, False)]
  with pytest.raises(run_config.ConfigError, match="--distributed='maybe': use auto, on or off"):
    parallel.start_processes('maybe')


MESH = r'''
import jax
from fsig_jax.engine import parallel, run_config
assert jax.device_count() == 8
assert parallel.make_mesh().devices.size == 8
two = parallel.make_mesh(max_devices=2)
assert list(two.devices) == jax.devices()[:2], two.devices
parallel.check_batch(2, two)
c = run_config.default_config()
c.max_devices = 2
assert parallel.config_mesh(c).devices.size == 2
assert parallel.make_mesh(max_devices=16).devices.size == 8  # at most: all there are
try:
  parallel.check_batch(2, parallel.make_mesh())
except run_config.ConfigError as e:
  assert '--config.max_devices=N' in str(e), e
else:
  raise AssertionError('batch 2 on 8 devices was accepted')
print('MESH-OK')
'''


def on_eight_cpu_devices(script: str, done: str):
  env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=8',
         'JAX_PLATFORMS': 'cpu'}
  r = subprocess.run([sys.executable, '-c', script], cwd=ROOT, env=env, capture_output=True,
                     text=True, timeout=600)
  assert r.returncode == 0 and done in r.stdout, r.stderr[-3000:]


def test_max_devices_selects_a_submesh():
  on_eight_cpu_devices(MESH, 'MESH-OK')


def test_rick_paper_configs_run_batch_two_on_any_host():
  from configs import rick_afhq_cat, rick_babies  # pylint: disable=g-import-not-at-top
  for c in (rick_afhq_cat.get_config('rick'), rick_babies.get_config('rick')):
    assert c.hparams.batch_size == 2 and c.max_devices == 2


RUN = r'''
import sys
sys.path.insert(0, 'tests')
import jax
from engine_utils import tiny_bundle, tiny_images
from fsig_jax.engine import loop, run_config
assert jax.device_count() == 8
c = run_config.default_config()
c.steps, c.log_every, c.sample_every, c.hparams.batch_size = 2, 1, 0, 2
c.max_devices = 2
state, _ = loop.train(c, None, bundle=tiny_bundle(), images=tiny_images(8))
assert int(jax.device_get(state['step'])) == 2
assert len(state['step'].sharding.device_set) == 2
print('RUN-OK')
'''


@pytest.mark.slow
def test_batch_two_adapts_on_eight_devices():
  on_eight_cpu_devices(RUN, 'RUN-OK')
