"""Data parallelism over every device (and host) with one code path.

A 1-D mesh with axis 'data' spans all devices of all processes. The train state
is replicated, batches are sharded along their first axis, and XLA inserts the
gradient all-reduce. The same step runs on one CPU, 8 fake CPU devices, a GPU
host or a TPU pod; multi-host runs call `initialize_distributed` first.
"""
import os
from typing import Mapping, Optional, Tuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from fsig_jax.engine import run_config
from fsig_jax.utils import executable_cache

DATA = 'data'


def initialize_distributed(coordinator: Optional[str] = None, num_processes: Optional[int] = None,
                           process_id: Optional[int] = None, cpu_collectives: bool = False):
  """jax.distributed.initialize with explicit flags (needed off-TPU/SLURM).

  On CPU, cross-process collectives need `cpu_collectives=True` (gloo).
  """
  if cpu_collectives:
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                             process_id=process_id)


# Managed clusters whose environment jax.distributed.initialize() reads by itself
# (jax/_src/clusters: SlurmCluster, OmpiCluster, the TPU and GKE clusters): the
# variable that marks one, and how to read its process count from it.
CLUSTERS = (
    ('JAX_COORDINATOR_ADDRESS', 'a JAX coordinator (JAX_COORDINATOR_ADDRESS)', None),
    ('SLURM_JOB_ID', 'SLURM', 'SLURM_NTASKS'),
    ('OMPI_MCA_orte_hnp_uri', 'Open MPI (mpirun)', 'OMPI_COMM_WORLD_SIZE'),
    ('TPU_WORKER_HOSTNAMES', 'a multi-host TPU slice', None),
)


def detect_cluster(env: Mapping[str, str] = os.environ) -> Optional[str]:
  """The managed multi-process environment this process runs in, or None.

  SLURM and Open MPI count only with more than one task (a single-task job is a
  plain run); a TPU slice counts with more than one worker host.
  """
  for var, name, count in CLUSTERS:
    if not env.get(var):
      continue
    if count and int(env.get(count, '1') or 1) <= 1:
      continue
    if var == 'TPU_WORKER_HOSTNAMES' and ',' not in env[var]:
      continue
    return name
  return None


def start_processes(mode: str = 'auto', coordinator: Optional[str] = None,
                    num_processes: Optional[int] = None, process_id: Optional[int] = None,
                    cpu_collectives: bool = False,
                    env: Mapping[str, str] = os.environ) -> Optional[str]:
  """Joins a multi-process run when there is one; returns what it joined (or None).

  mode 'auto' (the launchers' default): explicit `coordinator` flags win; else a
  detected cluster (`detect_cluster`: TPU pod slices, SLURM, Open MPI, a set
  JAX_COORDINATOR_ADDRESS) calls jax.distributed.initialize() with no
  arguments, which reads that cluster's environment; else a single process.
  'on': always initialize (e.g. a cluster jax detects and this does not);
  'off': never.
  """
  if mode not in ('auto', 'on', 'off'):
    raise run_config.ConfigError(f'--distributed={mode!r}: use auto, on or off')
  if mode == 'off':
    return None
  if coordinator:
    initialize_distributed(coordinator, num_processes, process_id, cpu_collectives)
    return f'coordinator {coordinator}'
  found = detect_cluster(env) if mode == 'auto' else 'requested (--distributed=on)'
  if found is None:
    return None
  initialize_distributed(None, None, None, cpu_collectives)
  return found


def make_mesh(devices=None, max_devices: int = 0) -> Mesh:
  """The 1-D data mesh over `devices` (default: every device of every process).

  max_devices > 0 uses at most that many, the same number from each process (so
  a paper's batch of 2 runs unchanged on 8 cores: `config.max_devices = 2`).
  """
  devices = list(devices if devices is not None else jax.devices())
  if max_devices and max_devices < len(devices):
    procs = sorted({d.process_index for d in devices})
    if max_devices % len(procs):
      raise run_config.ConfigError(
          f'max_devices {max_devices} must be a multiple of the {len(procs)} processes (each '
          f'process uses the same number of devices); use {len(procs)} or a multiple of it')
    per = max_devices // len(procs)
    devices = [d for p in procs for d in [d for d in devices if d.process_index == p][:per]]
  return Mesh(np.asarray(devices), (DATA,))


def config_mesh(config) -> Mesh:
  """The mesh a trainer's config asks for (`config.max_devices`, 0 or absent: all)."""
  return make_mesh(max_devices=int(config.get('max_devices', 0) or 0))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA))


def check_batch(batch_size: int, mesh: Mesh):
  n = mesh.devices.size
  if batch_size % n:
    raise run_config.ConfigError(
        f'hparams.batch_size {batch_size} is not divisible by the {n} devices; '
        f'use a multiple of {n}, or fewer devices (--config.max_devices=N, N dividing it)')


def global_batch(local: np.ndarray, mesh: Mesh) -> jax.Array:
  """This process's slice of the global batch -> a globally sharded array."""
  return jax.make_array_from_process_local_data(batch_sharding(mesh), local)


def replicate(tree, mesh: Mesh):
  """Puts a host pytree on every device (identical on every process)."""
  return jax.device_put(tree, replicated(mesh))


def local_slice(batch: np.ndarray) -> np.ndarray:
  """This process's contiguous share of a global batch that every process drew alike."""
  n, i = jax.process_count(), jax.process_index()
  per = len(batch) // n
  return batch[i * per:(i + 1) * per]


def shard_batches(tree, mesh: Optional[Mesh]):
  """Host global batches (drawn alike on every process, leading axis the batch) ->
  arrays sharded over the mesh; plain device arrays without one."""
  if mesh is None:
    return jax.tree.map(jax.numpy.asarray, tree)
  return jax.tree.map(lambda a: global_batch(local_slice(np.asarray(a)), mesh), tree)


def constrain_batch(tree, mesh: Optional[Mesh]):
  """Inside a jitted step: arrays the step makes itself (a teacher's samples, latents),
  leading axis the batch, sharded like the batches, so each device makes its share."""
  if mesh is None:
    return tree
  return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, batch_sharding(mesh)), tree)


def jit_step(fn, mesh: Optional[Mesh], cache_as: Optional[Tuple[str, dict]] = None):
  """jax.jit of step(state, *inputs) -> (state, metrics), donating the state; with a
  mesh the new state and the metrics come out replicated (the inputs bring their own
  shardings: a replicated state, sharded batches). Called with positional arguments.

  cache_as = (name, description): the compiled program comes from
  `utils.executable_cache` (a restart loads it without tracing), keyed by the code,
  the description (everything `fn`'s closure is built from: the callers pass their
  run config and architectures), the mesh and the arguments' types."""
  kwargs = {} if mesh is None else {
      'out_shardings': (replicated(mesh), replicated(mesh))}
  step = jax.jit(fn, donate_argnums=0, **kwargs)
  if cache_as is None:
    return step
  name, description = cache_as
  return executable_cache.CachedJit(step, name, {
      **description, 'mesh': executable_cache.mesh_description(mesh), 'donate': True})
