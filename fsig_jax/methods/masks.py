"""Masks over parameter trees: the shared mechanism of freezing and pruning.

A mask is a pytree with the parameters' structure whose leaves broadcast
against them (scalars for whole tensors, per-filter vectors for RICK). Masks
are data, so they live in method state and are applied inside the jit step.
"""
from typing import Callable, Tuple

import jax
import jax.numpy as jnp


def path_names(path) -> Tuple[str, ...]:
  """('net', 'b64', 'conv0', 'kernel') from a jax key path."""
  return tuple(str(getattr(k, 'key', getattr(k, 'idx', k))) for k in path)


def tree_mask(params, keep: Callable[[Tuple[str, ...]], bool]):
  """A scalar 1/0 mask per leaf: keep(path) decides whether the leaf trains."""
  return jax.tree_util.tree_map_with_path(
      lambda p, x: jnp.asarray(1.0 if keep(path_names(p)) else 0.0, x.dtype), params)


def apply_mask(tree, mask):
  """Multiplies each leaf by its mask leaf (zeroing frozen gradients/updates)."""
  return jax.tree.map(lambda x, m: x * m, tree, mask)
