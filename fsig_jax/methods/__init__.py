"""Adaptation methods, one module per paper, and a registry by name."""
from fsig_jax.methods.adam import adam
from fsig_jax.methods.base import Composite, Method, MethodInit, compose
from fsig_jax.methods.cdc import cdc
from fsig_jax.methods.dcl import dcl
from fsig_jax.methods.ewc import ewc
from fsig_jax.methods.freezed import freezed
from fsig_jax.methods.kd_fsig import kd_fsig
from fsig_jax.methods.rick import rick
from fsig_jax.methods.tgan import tgan

REGISTRY = {'tgan': tgan, 'freezed': freezed, 'ewc': ewc, 'cdc': cdc, 'dcl': dcl, 'rick': rick,
            'adam': adam, 'kd_fsig': kd_fsig}


def get_method(names, **kwargs_by_method) -> Composite:
  """compose(*[REGISTRY[n](**kwargs_by_method.get(n, {})) for n in names])."""
  names = [names] if isinstance(names, str) else list(names)
  unknown = [n for n in names if n not in REGISTRY]
  if unknown:
    raise ValueError(f'unknown method(s) {unknown}; available: {sorted(REGISTRY)}')
  return compose(*[REGISTRY[n](**kwargs_by_method.get(n, {})) for n in names])
