"""Mixed precision (hparams.compute_dtype='bfloat16'): G and D compute in bfloat16
while parameters, optimiser state and losses stay float32; one step's losses stay
close to float32's."""
import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from engine_utils import TINY, tiny_bundle, tiny_hparams, tiny_images
from fsig_jax.engine.run_config import ConfigError
from fsig_jax.engine.state import init_state
from fsig_jax.engine.step import make_train_step
from fsig_jax.methods import get_method
from fsig_jax.models.functional import Models


def matmul_dtypes(fn, *args):
  """Counts (primitive, lhs dtype, rhs dtype) of every conv and matmul in fn's jaxpr."""
  count = collections.Counter()

  def walk(jaxpr):
    for e in jaxpr.eqns:
      if e.primitive.name in ('conv_general_dilated', 'dot_general'):
        count[(e.primitive.name, str(e.invars[0].aval.dtype), str(e.invars[1].aval.dtype))] += 1
      for p in e.params.values():
        inner = getattr(p, 'jaxpr', None)
        if inner is not None:
          walk(getattr(inner, 'jaxpr', inner))
  walk(jax.make_jaxpr(fn)(*args).jaxpr)
  return count


@pytest.mark.parametrize('dtype', ['float32', 'bfloat16'])
def test_networks_compute_in_the_compute_dtype_and_return_float32(dtype):
  b = tiny_bundle()
  m = Models(TINY, dtype)
  z = jax.random.normal(jax.random.PRNGKey(0), (2, TINY.z_dim))

  def g_and_d(g, d):
    w = m.map(g['params'], g['buffers'], z)
    img, feats = m.synth(g['params'], g['buffers'], m.broadcast(w), jax.random.PRNGKey(1),
                         return_features=True)
    logits, d_feats = m.disc(d['params'], img)
    return img, feats, logits, d_feats

  count = matmul_dtypes(g_and_d, b.nets['G'], b.nets['D'])
  assert sum(count.values()) > 20, count
  assert {(l, r) for _, l, r in count} == {(dtype, dtype)}, count
  outs = jax.eval_shape(g_and_d, b.nets['G'], b.nets['D'])
  assert {x.dtype for x in jax.tree.leaves(outs)} == {jnp.dtype('float32')}


def one_step(dtype):
  hp = tiny_hparams(compute_dtype=dtype)
  hp.d_reg_every = hp.g_reg_every = 1  # R1 and path length in the same step
  method = get_method('tgan')
  state = init_state(tiny_bundle(), hp, method, jax.random.PRNGKey(1))
  state, metrics = make_train_step(TINY, hp, method)(state, jnp.asarray(tiny_images(4)))
  return jax.device_get(state), {k: float(v) for k, v in metrics.items()}


@pytest.mark.slow  # two step compiles
def test_a_bfloat16_step_keeps_float32_state_and_close_losses():
  s32, m32 = one_step('float32')
  s16, m16 = one_step('bfloat16')
  assert {x.dtype for x in jax.tree.leaves(s16) if jnp.issubdtype(x.dtype, jnp.floating)} == {
      np.dtype('float32')}
  assert m16.keys() == m32.keys()
  for k in ('d_adv', 'g_adv', 'r1', 'pl', 'real_score', 'fake_score'):
    assert np.isfinite(m16[k]), (k, m16)
    assert abs(m16[k] - m32[k]) <= 0.05 * abs(m32[k]) + 0.02, (k, m16[k], m32[k])
  # The update is the float32 one up to bfloat16's rounding of the activations.
  g32, g16 = s32['G']['net'], s16['G']['net']
  diffs = [np.max(np.abs(a - b)) for a, b in zip(jax.tree.leaves(g32), jax.tree.leaves(g16))]
  assert max(diffs) < 1e-2 and max(diffs) > 0, max(diffs)


def test_unknown_compute_dtype_names_the_setting():
  hp = tiny_hparams(compute_dtype='fp8')
  with pytest.raises(ConfigError, match=r"hparams.compute_dtype must be one of \('float32', "
                     r"'bfloat16'\), got 'fp8'"):
    make_train_step(TINY, hp, get_method('tgan'))
