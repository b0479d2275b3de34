"""Data parallelism over every device (and host) with one code path.

A 1-D mesh with axis 'data' spans all devices of all processes. The train state
is replicated, batches are sharded along their first axis, and XLA inserts the
gradient all-reduce. The same step runs on one CPU, 8 fake CPU devices, a GPU
host or a TPU pod; multi-host runs call `initialize_distributed` first.
"""
from typing import Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from fsig_jax.engine import run_config

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


def make_mesh(devices=None) -> Mesh:
  return Mesh(np.asarray(devices if devices is not None else jax.devices()), (DATA,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA))


def check_batch(batch_size: int, mesh: Mesh):
  n = mesh.devices.size
  if batch_size % n:
    raise run_config.ConfigError(
        f'hparams.batch_size {batch_size} is not divisible by the {n} devices; '
        f'use a multiple of {n} (or fewer devices)')


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


def jit_step(fn, mesh: Optional[Mesh]):
  """jax.jit of step(state, *inputs) -> (state, metrics), donating the state; with a
  mesh the new state and the metrics come out replicated (the inputs bring their own
  shardings: a replicated state, sharded batches)."""
  if mesh is None:
    return jax.jit(fn, donate_argnums=0)
  return jax.jit(fn, donate_argnums=0, out_shardings=(replicated(mesh), replicated(mesh)))
