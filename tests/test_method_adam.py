"""AdAM: kernel modulation, importance from the probed Fisher, masked adaptation,
export, resume, adapt() and the configs.

The heavy part (probing + adaptation) runs once, through `fsig_jax.adapt`
with a workdir, on an 8 px model (the engine tests' tiny one with its 16 px
block removed, to halve compile time) with 2 probing steps; the other runs
reuse its compiled programs (same shapes and hyper-parameters).
"""
import functools
import json
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fsig_jax
from conftest import ROOT
from engine_utils import leaves_with_paths, tiny_hparams
from fsig_jax.convert.load import load_bundle
from fsig_jax.engine import export, loop, phases, run_config
from fsig_jax.engine.state import init_state, state_to_bundle
from fsig_jax.methods import get_method
from fsig_jax.methods.adam import (LAYOUT, MOD, decide, filter_importance, fold,
                                   init_modulation, main_masks, modulate, modulated_kernels)
from fsig_jax.models.bundle import init_bundle
from fsig_jax.models.config import StyleGAN2Config

sys.path.insert(0, str(ROOT))
from configs import adam_afhq_cat, adam_babies, offline  # noqa: E402  pylint: disable=g-import-not-at-top

# 2 probing steps, the Fisher from 1 batch of 4 images. R1 and path length are
# off: they are not AdAM's business and dominate compile time (the step applies
# `effective_params` in their losses exactly as in the others).
KW = dict(probe_steps=2, num_batch_fisher=1)
HP = dict(pl_weight=0.0, r1_gamma=0.0)
RUN = dict(seed=0, log_every=1, checkpoint_every=2, sample_every=0, **HP)

SMALL = StyleGAN2Config(8, (32, 16), (16, 32), z_dim=32, w_dim=32, n_mlp=2)
_init_bundle = jax.jit(functools.partial(init_bundle, SMALL))  # compiled once, cacheable


def tiny_bundle():
  return _init_bundle(jax.random.PRNGKey(0))


def tiny_images(n=8):
  return np.asarray(jax.random.uniform(jax.random.PRNGKey(3), (n, 8, 8, 3), minval=-1, maxval=1))


def _flat(tree):
  return leaves_with_paths(tree)


# --------------------------------------------------------------------------
# Modulation.

def test_identity_modulation_reproduces_the_network_exactly():
  b = tiny_bundle()
  for side, net in (('G', b.nets['G']['params']), ('D', b.nets['D']['params'])):
    mod = init_modulation(side, net, jax.random.PRNGKey(1))
    kernels = [p for p in _flat(net) if p.endswith("['kernel']")]
    n_mod = len(modulated_kernels(side, net))
    # G: every kernel; D: all but the 4x4 epilogue's conv, fc, out.
    assert n_mod == (len(kernels) if side == 'G' else len(kernels) - 3)
    for m in (jax.tree.map(jnp.zeros_like, mod), mod):  # u = v = 0, and the 1e-7 init
      folded = fold(net, m)
      assert jax.tree.structure(folded) == jax.tree.structure(net)
      want, got = _flat(net), _flat(folded)
      for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
  # Through the method's engine hook (what the step and the export use).
  g = b.nets['G']['params']
  side = {'net': g, MOD: init_modulation('G', g, jax.random.PRNGKey(1))}
  net = get_method('adam').effective_params('G', side, {'adam': {}})
  for k, x in _flat(g).items():
    np.testing.assert_array_equal(_flat(net)[k], x, err_msg=k)


def test_modulation_is_rank_one_per_output_filter():
  rng = np.random.default_rng(0)
  kernel = rng.normal(size=(3, 3, 2, 4)).astype(np.float32)
  u = rng.normal(size=(18,)).astype(np.float32)
  v = np.array([0.0, 1.5, 0.0, -2.0], np.float32)
  got = np.asarray(modulate(jnp.asarray(kernel), jnp.asarray(u), jnp.asarray(v)))
  for o in range(4):
    want = kernel[..., o] * (1 + u.reshape(3, 3, 2) * v[o])
    np.testing.assert_allclose(got[..., o], want, rtol=1e-6, err_msg=f'filter {o}')
  np.testing.assert_array_equal(got[..., [0, 2]], kernel[..., [0, 2]])  # v = 0: unmodulated
  dense = rng.normal(size=(5, 3)).astype(np.float32)
  ud, vd = rng.normal(size=(5,)).astype(np.float32), rng.normal(size=(3,)).astype(np.float32)
  np.testing.assert_allclose(modulate(dense, ud, vd), dense * (1 + np.outer(ud, vd)),
                             rtol=1e-6)


def official_conv(kernel_hwio, u, v):
  """model_adam.py EqualConv2d_kml.forward (l. 206-208), in numpy on an OIHW
  weight: weight * (1 + torch.ger(u, v).view(out, in, k, k)); back to HWIO."""
  w = np.transpose(kernel_hwio, (3, 2, 0, 1))  # (out, in, kh, kw), as torch stores it
  hat = np.outer(u, v).reshape(w.shape)  # a view of the C-ordered (in*k*k, out) product
  return np.transpose(w * (1 + hat), (2, 3, 1, 0))


def test_official_layout_is_the_official_formula():
  rng = np.random.default_rng(5)
  kernel = rng.normal(size=(3, 3, 4, 6)).astype(np.float32)
  u, v = rng.normal(size=(36,)).astype(np.float32), rng.normal(size=(6,)).astype(np.float32)
  got = np.asarray(modulate(jnp.asarray(kernel), jnp.asarray(u), jnp.asarray(v),
                            official_layout=True))
  np.testing.assert_allclose(got, official_conv(kernel, u, v), rtol=1e-5, atol=1e-6)
  default = np.asarray(modulate(jnp.asarray(kernel), jnp.asarray(u), jnp.asarray(v)))
  assert np.max(np.abs(default - got)) > 1e-2  # the layouts differ
  # A 1x1 conv (ToRGB, skip, fromRGB): the view mixes filters there too.
  k1, u1 = kernel[:1, :1], u[:4]
  np.testing.assert_allclose(modulate(k1, u1, v, official_layout=True),
                             official_conv(k1, u1, v), rtol=1e-5, atol=1e-6)
  # Dense (KML_fc l. 28-46): F.linear(x, W * (1 + ger(v, u).view(W.shape)) / sqrt(out)),
  # against our EqualDense's x @ (kernel / sqrt(in)) on the modulated kernel.
  dense = rng.normal(size=(5, 3)).astype(np.float32)  # (in, out)
  ud, vd = rng.normal(size=(5,)).astype(np.float32), rng.normal(size=(3,)).astype(np.float32)
  x = rng.normal(size=(2, 5)).astype(np.float32)
  w_t = dense.T  # torch (out, in)
  want = x @ (w_t * (1 + np.outer(vd, ud).reshape(w_t.shape)) / np.sqrt(3)).T
  ours = x @ (np.asarray(modulate(dense, ud, vd, official_layout=True)) / np.sqrt(5))
  np.testing.assert_allclose(ours, want, rtol=1e-5)


def test_official_layout_against_torch():
  torch = pytest.importorskip('torch')
  rng = np.random.default_rng(6)
  out_c, in_c, k = 5, 3, 3
  w = rng.normal(size=(out_c, in_c, k, k)).astype(np.float32)  # torch layout
  u = rng.normal(size=(in_c * k * k,)).astype(np.float32)
  v = rng.normal(size=(out_c,)).astype(np.float32)
  tw, tu, tv = (torch.from_numpy(a) for a in (w, u, v))
  want = (tw * (torch.ones_like(tw) + torch.ger(tu, tv).view(out_c, in_c, k, k))).numpy()
  got = modulate(jnp.asarray(np.transpose(w, (2, 3, 1, 0))), u, v, official_layout=True)
  np.testing.assert_allclose(np.transpose(np.asarray(got), (3, 2, 0, 1)), want, rtol=1e-5,
                             atol=1e-6)


def test_official_layout_folds_the_kml_fc_scale_and_is_kept_in_the_state():
  b = tiny_bundle()
  g = b.nets['G']['params']
  mod = jax.tree.map(jnp.zeros_like, init_modulation('G', g, jax.random.PRNGKey(1)))
  want, got = _flat(g), _flat(fold(g, mod, official_layout=True))
  n_dense = 0
  for k, x in want.items():
    if k.endswith("['kernel']") and x.ndim == 2:  # mapping fcs and style affines
      n_dense += 1
      np.testing.assert_allclose(got[k], x * np.sqrt(x.shape[0] / x.shape[1]), rtol=1e-6)
    else:
      np.testing.assert_array_equal(got[k], x, err_msg=k)
  assert n_dense == 2 + 5  # 2 mapping fcs; b4 conv1 + torgb, b8 conv0, conv1 + torgb
  # The method's hook reads the layout from the state (exports rebuild it by name).
  side = {'net': g, MOD: init_modulation('G', g, jax.random.PRNGKey(1))}
  on = get_method('adam').effective_params('G', side, {'adam': {LAYOUT: jnp.ones((), jnp.int32)}})
  np.testing.assert_array_equal(
      _flat(on)["['synthesis']['b8']['conv0']['affine']['kernel']"],
      _flat(fold(g, side[MOD], official_layout=True))[
          "['synthesis']['b8']['conv0']['affine']['kernel']"])
  with pytest.raises(ValueError, match='official_layout must be True'):
    get_method('adam', adam={'official_layout': 'yes'})


# --------------------------------------------------------------------------
# Importance and masks.

def _sides(b):
  g, d = b.nets['G']['params'], b.nets['D']['params']
  return ({'net': g, MOD: init_modulation('G', g, jax.random.PRNGKey(0))},
          {'net': d, MOD: init_modulation('D', d, jax.random.PRNGKey(0))})


def test_importance_and_decisions_on_a_known_case():
  g_side, d_side = _sides(tiny_bundle())
  rng = np.random.default_rng(1)
  fg = jax.tree.map(lambda x: rng.random(x.shape).astype(np.float32), g_side)
  fd = jax.tree.map(lambda x: rng.random(x.shape).astype(np.float32), d_side)
  imp = filter_importance(fg, fd)
  assert sorted(imp['g_conv']) == ['b8.conv0', 'b8.conv1']  # not the 4x4 conv, not ToRGB
  assert sorted(imp['g_fc']) == sorted(imp['g_conv'])
  assert sorted(imp['d']) == ['b8.conv0', 'b8.conv1', 'b8.skip']  # not fromRGB, not b4
  m, n = fg[MOD]['synthesis']['b8']['conv1'], fg['net']['synthesis']['b8']['conv1']
  np.testing.assert_allclose(imp['g_conv']['b8.conv1'],
                             m['kernel']['u'].mean() + m['kernel']['v'], rtol=1e-6)
  np.testing.assert_allclose(
      imp['g_fc']['b8.conv1'],
      (m['affine']['kernel']['u'].mean() + m['affine']['kernel']['v'] + n['affine']['bias']) / 2,
      rtol=1e-6)
  dm, dn = fd[MOD]['b8'], fd['net']['b8']
  np.testing.assert_allclose(
      imp['d']['b8.conv0'],
      (dm['conv0']['kernel']['u'].mean() + dm['conv0']['kernel']['v'] + dn['conv0']['bias']) / 2,
      rtol=1e-6)
  np.testing.assert_allclose(imp['d']['b8.skip'],
                             dm['skip']['kernel']['u'].mean() + dm['skip']['kernel']['v'],
                             rtol=1e-6)

  # Thresholds: numpy's percentile over the pooled layers; strictly above is important.
  pool = {'a': jnp.array([1.0, 5.0, 3.0]), 'b': jnp.array([4.0, 2.0])}
  important, cut = decide(pool, 50)
  assert float(cut) == np.percentile([1, 5, 3, 4, 2], 50) == 3.0
  assert np.asarray(important['a']).tolist() == [False, True, False]
  assert np.asarray(important['b']).tolist() == [True, False]
  important, cut = decide(pool, 75)  # 75: the top quarter (AFHQ-Cat)
  assert float(cut) == 4.0 and sum(int(np.sum(v)) for v in important.values()) == 1
  assert not any(np.any(v) for v in decide(pool, 100)[0].values())


def test_masks_freeze_important_base_filters_and_unmodulate_the_rest():
  g_side, d_side = _sides(tiny_bundle())
  imp_vec = lambda n, seed: jnp.asarray(np.random.default_rng(seed).random(n) > 0.5)  # noqa: E731
  important = {
      'g_conv': {f'b{r}.{c}': imp_vec(g_side['net']['synthesis'][f'b{r}'][c]['bias'].shape[0], r)
                 for r in (8,) for c in ('conv0', 'conv1')},
      'g_fc': {f'b{r}.{c}': imp_vec(g_side['net']['synthesis'][f'b{r}'][c]['affine']['bias']
                                    .shape[0], r + 1) for r in (8,) for c in ('conv0', 'conv1')},
      'd': {f'b{r}.{c}': imp_vec(d_side['net'][f'b{r}'][c]['kernel'].shape[-1], r + 2)
            for r in (8,) for c in ('conv0', 'conv1', 'skip')}}
  mg = main_masks('G', g_side['net'], g_side[MOD], important)
  md = main_masks('D', d_side['net'], d_side[MOD], important)
  f = lambda x: np.asarray(x, np.float32)  # noqa: E731
  syn, msyn = mg['net']['synthesis'], mg[MOD]['synthesis']
  np.testing.assert_array_equal(syn['b8']['conv0']['kernel'],
                                1 - f(important['g_conv']['b8.conv0']))
  np.testing.assert_array_equal(msyn['b8']['conv0']['kernel']['v'],
                                f(important['g_conv']['b8.conv0']))
  np.testing.assert_array_equal(syn['b8']['conv1']['affine']['kernel'],
                                1 - f(important['g_fc']['b8.conv1']))
  np.testing.assert_array_equal(msyn['b8']['conv1']['affine']['kernel']['v'],
                                f(important['g_fc']['b8.conv1']))
  # Base frozen, modulation trained: mapping, the 4x4 conv, ToRGBs; the constant is frozen.
  for path in (('mapping', 'fc0', 'kernel'), ('synthesis', 'b4', 'conv1', 'kernel'),
               ('synthesis', 'b8', 'torgb', 'kernel'), ('synthesis', 'b4', 'torgb', 'affine',
                                                          'kernel'), ('synthesis', 'b4', 'const')):
    node, mnode = mg['net'], mg[MOD]
    for k in path:
      node = node[k]
      mnode = mnode.get(k, {}) if isinstance(mnode, dict) else {}
    assert float(node) == 0.0, path
    if path[-1] == 'kernel':
      assert float(mnode['u']) == 1.0 and float(mnode['v']) == 1.0, path
  # Every bias and noise strength trains (the official b_vectors).
  for k, x in _flat(mg['net']).items():
    if k.endswith(("['bias']", "['noise_strength']")):
      assert float(x) == 1.0, k
  for k, x in _flat(mg[MOD]).items():
    if k.endswith("['u']"):
      assert float(x) == 1.0, k
  # D: fromRGB base frozen, ResBlocks per filter, the epilogue trains.
  assert float(md['net']['b8']['fromrgb']['kernel']) == 0.0
  assert float(md['net']['b8']['fromrgb']['bias']) == 1.0
  np.testing.assert_array_equal(md['net']['b8']['skip']['kernel'], 1 - f(important['d']['b8.skip']))
  np.testing.assert_array_equal(md[MOD]['b8']['skip']['kernel']['v'], f(important['d']['b8.skip']))
  assert all(float(x) == 1.0 for x in jax.tree.leaves(md['net']['b4']))
  assert 'b4' not in md[MOD]


@pytest.mark.parametrize('kwargs,match', [
    (dict(fisher_quantile=-1), r'fisher_quantile is a percentile and must be in \[0, 100\]'),
    (dict(fisher_quantile=100.5), r'fisher_quantile is a percentile and must be in \[0, 100\]'),
    (dict(probe_steps=-1), r'probe_steps must be an integer >= 0 \(official 500\), got -1'),
    (dict(probe_steps=2.5), r'probe_steps must be an integer >= 0'),
    (dict(num_batch_fisher=0), r'num_batch_fisher must be an integer >= 1'),
    (dict(chunk=0), r'chunk must be an integer >= 1'),
])
def test_bad_kwargs_are_one_clear_error(kwargs, match):
  with pytest.raises(ValueError, match=match):
    get_method('adam', adam=kwargs)


def test_bad_kwargs_from_a_config_are_a_config_error():
  c = run_config.default_config()
  c.method.names = 'adam'
  c.method.kwargs.adam = {'fisher_quantile': 150.0}
  c.steps = 1
  with pytest.raises(run_config.ConfigError, match=r'config.method: adam: fisher_quantile'):
    loop.train(c, None, bundle=tiny_bundle(), images=tiny_images(8))


def test_probing_needs_the_target_images():
  with pytest.raises(ValueError, match='adam needs the target images'):
    init_state(tiny_bundle(), tiny_hparams(), get_method('adam', adam=KW), jax.random.PRNGKey(0))


# --------------------------------------------------------------------------
# A real run: probing, 4 adaptation steps, checkpoints at 2 and 4, export.

@pytest.fixture(scope='module')
def run4(tmp_path_factory):
  wd = str(tmp_path_factory.mktemp('adam') / 'wd')
  adapted, state = fsig_jax.adapt(tiny_bundle(), tiny_images(8), method='adam', steps=4,
                                  workdir=wd, method_kwargs={'adam': KW}, **RUN)
  return wd, jax.device_get(state), adapted


def _initial_state():
  """The run's state before step 0 (the loop seeds init_state with PRNGKey(seed))."""
  hp = run_config.default_config().hparams  # as adapt() builds it
  for k, v in HP.items():
    hp[k] = v
  return jax.device_get(init_state(tiny_bundle(), hp, get_method('adam', adam=KW),
                                   jax.random.PRNGKey(0), images=tiny_images(8),
                                   run_phase=phases.runner()))


def test_frozen_base_filters_never_change_while_their_modulation_does(run4):
  _, final, _ = run4
  init = _initial_state()
  ms = final['method']['adam']
  for a, b in zip(jax.tree.leaves(init['method']['adam']), jax.tree.leaves(ms)):
    np.testing.assert_array_equal(a, b)  # the same probing decisions; constant over the run
  n_frozen = n_moved = 0
  for side in ('G', 'D'):
    mask = {k: np.asarray(v) for k, v in _flat(ms['mask'][side]).items()}
    before, after = _flat(init[side]), _flat(final[side])
    assert mask.keys() == before.keys()
    for k, m in mask.items():
      m = np.broadcast_to(m, before[k].shape)
      frozen = m == 0
      np.testing.assert_array_equal(after[k][frozen], before[k][frozen], err_msg=k)
      n_frozen += int(frozen.sum())
      if k.endswith("['v']"):  # v of a fine-tuned (unimportant) filter stays exactly zero
        assert not np.any(after[k][frozen]), k
      vec = mask[k]
      if k.endswith("['kernel']") and vec.ndim == 1:  # per-filter decisions
        moved = np.any(after[k] != before[k], axis=tuple(range(before[k].ndim - 1)))
        n_moved += int(moved[vec == 1].sum())  # fine-tuned base filters train
  assert n_frozen > 0 and n_moved > 0
  # Important filters: base frozen, modulation v moved, in every probed G conv and D layer.
  for side, layers in (('G', ms['importance']['g_conv']), ('D', ms['importance']['d'])):
    for layer, imp in layers.items():
      b, c = layer.split('.')
      path = (['synthesis'] if side == 'G' else []) + [b, c, 'kernel']
      node_i, node_f, node_m = init[side][MOD], final[side][MOD], ms['mask'][side]['net']
      for p in path:
        node_i, node_f, node_m = node_i[p], node_f[p], node_m[p]
      important = np.asarray(node_m) == 0
      assert np.array_equal(important, np.asarray(imp) > float(ms['cutline'][
          'g_conv' if side == 'G' else 'd']))
      if important.any():
        assert np.all(node_f['v'][important] != node_i['v'][important]), (side, layer)
  # Layers that only adapt through modulation: base fixed, u and v moved.
  for path in (('mapping', 'fc1'), ('synthesis', 'b4', 'conv1'), ('synthesis', 'b8', 'torgb')):
    bi, bf, mi, mf = init['G']['net'], final['G']['net'], init['G'][MOD], final['G'][MOD]
    for p in path:
      bi, bf, mi, mf = bi[p], bf[p], mi[p], mf[p]
    np.testing.assert_array_equal(bi['kernel'], bf['kernel'])
    assert not np.array_equal(mi['kernel']['u'], mf['kernel']['u']), path
    assert not np.array_equal(mi['kernel']['v'], mf['kernel']['v']), path
  # The constant and fromRGB's kernel never change.
  np.testing.assert_array_equal(init['G']['net']['synthesis']['b4']['const'],
                                final['G']['net']['synthesis']['b4']['const'])
  np.testing.assert_array_equal(init['D']['net']['b8']['fromrgb']['kernel'],
                                final['D']['net']['b8']['fromrgb']['kernel'])


def test_exported_model_is_a_plain_folded_stylegan2(run4):
  wd, final, adapted = run4
  src = tiny_bundle()
  for name in ('G_ema', 'G', 'D'):
    assert jax.tree.structure(adapted.nets[name]['params']) == \
        jax.tree.structure(src.nets[name]['params']), name
  for side, name in (('G', 'G'), ('D', 'D')):
    want = _flat(fold(final[side]['net'], final[side][MOD]))
    got = _flat(adapted.nets[name]['params'])
    for k in want:
      np.testing.assert_array_equal(got[k], want[k], err_msg=k)
  # state_to_bundle rebuilds the fold from the method name in the state.
  again = state_to_bundle(final, src)
  np.testing.assert_array_equal(again.nets['D']['params']['b8']['conv0']['kernel'],
                                adapted.nets['D']['params']['b8']['conv0']['kernel'])
  z = jax.random.normal(jax.random.PRNGKey(7), (2, 32))
  saved = load_bundle(os.path.join(wd, 'model'))
  np.testing.assert_allclose(saved.generate(z), adapted.generate(z), atol=1e-6)
  assert not np.allclose(adapted.generate(z), src.generate(z))
  # A workdir without model/ (a run still training) is read from its checkpoint,
  # folded the same way (launch/eval.py --workdir).
  wd2 = os.path.join(os.path.dirname(wd), 'no_model')
  shutil.copytree(wd, wd2, ignore=shutil.ignore_patterns('model', 'run.json'))
  from_ckpt, step = export.bundle_from_workdir(wd2)
  assert step == 4
  np.testing.assert_array_equal(from_ckpt.nets['G']['params']['synthesis']['b8']['conv0']['kernel'],
                                adapted.nets['G']['params']['synthesis']['b8']['conv0']['kernel'])
  report = json.load(open(os.path.join(wd, 'adam_importance.json')))
  assert set(report['cutline']) == {'g_conv', 'g_fc', 'd'}
  assert report['layers']['g_conv']['b8.conv0']['filters'] == 16


@pytest.mark.slow
def test_official_layout_run_exports_the_official_fold(tmp_path):
  """A 2-step run with official_layout=True: the state records it, and the exported
  nets (also when rebuilt from the state by name) are folded the official way."""
  wd = str(tmp_path / 'wd')
  adapted, state = fsig_jax.adapt(tiny_bundle(), tiny_images(8), method='adam', steps=2,
                                  workdir=wd, **RUN,
                                  method_kwargs={'adam': {**KW, 'official_layout': True}})
  final = jax.device_get(state)
  assert LAYOUT in final['method']['adam']
  again = state_to_bundle(final, tiny_bundle())
  for side, name in (('G', 'G'), ('D', 'D')):
    want = _flat(fold(final[side]['net'], final[side][MOD], official_layout=True))
    paper = _flat(fold(final[side]['net'], final[side][MOD]))
    for bundle in (adapted, again):
      got = _flat(bundle.nets[name]['params'])
      for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    assert any(not np.array_equal(want[k], paper[k]) for k in want)


def test_resume_gives_the_same_run(run4, tmp_path):
  wd, final, _ = run4
  wd2 = str(tmp_path / 'wd')
  shutil.copytree(wd, wd2)
  shutil.rmtree(os.path.join(wd2, 'checkpoints', '4'))  # as if killed after step 3
  _, state = fsig_jax.adapt(tiny_bundle(), tiny_images(8), method='adam', steps=4, workdir=wd2,
                            method_kwargs={'adam': KW}, **RUN)
  want, got = _flat(final), _flat(jax.device_get(state))
  assert want.keys() == got.keys()
  for k in want:
    np.testing.assert_array_equal(got[k], want[k], err_msg=k)


KILL_SCRIPT = r'''
import logging, sys
sys.path.insert(0, 'tests')
logging.basicConfig(level=logging.INFO, format='%(message)s', stream=sys.stdout)
import jax, numpy as np
from engine_utils import leaves_with_paths
from test_method_adam import tiny_bundle, tiny_images  # the 8 px model of this module
import fsig_jax
_, state = fsig_jax.adapt(
    tiny_bundle(), tiny_images(8), method='adam', steps=2, workdir=sys.argv[1],
    method_kwargs={'adam': dict(probe_steps=6, num_batch_fisher=1)}, seed=0,
    log_every=1, checkpoint_every=1, sample_every=0, pl_weight=0.0, r1_gamma=0.0)
np.savez(sys.argv[2], **leaves_with_paths(jax.device_get(state)))
print('DONE')
'''


@pytest.mark.slow
def test_sigkill_during_probing_resumes_probing_where_it_stopped(tmp_path):
  """Probing is a phase of the run: killed with SIGKILL mid-probing, the next
  run restores the probing checkpoint, trains only the probing steps after it,
  and ends bit-identical to a run that was never killed."""
  import re  # pylint: disable=g-import-not-at-top
  import signal  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  wd = str(tmp_path / 'wd')
  probe_ckpts = os.path.join(wd, 'phases', 'adam_probe', 'checkpoints')
  out = str(tmp_path / 'final.npz')
  p = subprocess.Popen([sys.executable, '-c', KILL_SCRIPT, wd, out], cwd=ROOT,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  t0 = time.time()
  while time.time() - t0 < 300:  # kill once probing has checkpointed step 2
    done = [int(d) for d in os.listdir(probe_ckpts) if d.isdigit()] \
        if os.path.isdir(probe_ckpts) else []
    if p.poll() is not None or (done and max(done) >= 2):
      break
    time.sleep(0.01)
  p.send_signal(signal.SIGKILL)
  p.wait()
  assert p.returncode == -signal.SIGKILL, 'the run ended before it could be killed mid-probing'
  killed_at = max(int(d) for d in os.listdir(probe_ckpts) if d.isdigit())
  assert 2 <= killed_at < 6
  assert not [d for d in os.listdir(os.path.join(wd, 'checkpoints')) if d.isdigit()]

  r = subprocess.run([sys.executable, '-c', KILL_SCRIPT, wd, out], cwd=ROOT, capture_output=True,
                     text=True, timeout=600)
  assert r.returncode == 0 and 'DONE' in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]
  assert f'adam_probe: resuming from checkpoint at step {killed_at}' in r.stdout, r.stdout
  probed = [int(m) for m in re.findall(r'adam_probe: step (\d+)/6', r.stdout)]
  assert probed and min(probed) == killed_at + 1 and max(probed) == 6, probed

  # A third run resumes the finished main run: probing is not repeated at all.
  got = dict(np.load(out))
  r3 = subprocess.run([sys.executable, '-c', KILL_SCRIPT, wd, out], cwd=ROOT, capture_output=True,
                      text=True, timeout=600)
  assert r3.returncode == 0 and 'adam_probe: done earlier' in r3.stdout, r3.stdout[-3000:]
  assert not re.search(r'adam_probe: step \d', r3.stdout)

  _, want = fsig_jax.adapt(tiny_bundle(), tiny_images(8), method='adam', steps=2,
                           method_kwargs={'adam': dict(probe_steps=6, num_batch_fisher=1)},
                           seed=0, log_every=1, checkpoint_every=1, sample_every=0, **HP)
  want = _flat(jax.device_get(want))
  assert want.keys() == got.keys()
  for k in want:
    np.testing.assert_array_equal(got[k], want[k], err_msg=k)


# --------------------------------------------------------------------------
# Configs and the CLI.

@pytest.mark.parametrize('module,quantile,steps', [(adam_babies, 50.0, 1500),
                                                   (adam_afhq_cat, 75.0, 2500)])
def test_paper_configs(module, quantile, steps, tmp_path, monkeypatch):
  c = module.get_config()
  assert c.model.resolution == 256 and c.steps == steps and c.hparams.batch_size == 4
  kw = run_config.method_kwargs(c)['adam']
  assert kw == dict(fisher_quantile=quantile, probe_steps=500, num_batch_fisher=250)
  get_method(run_config.method_names(c), **run_config.method_kwargs(c))
  monkeypatch.chdir(tmp_path)  # the default checkpoint path does not exist here
  with pytest.raises(run_config.ConfigError, match='style_gan_source_ffhq.pt'):
    loop.prepare(c)
  assert offline.get_config('adam,babies').method.names == 'adam'


@pytest.mark.slow
def test_cli_runs_the_babies_config_end_to_end(tmp_path):
  """configs/adam_babies.py on the tiny model (saved as a checkpoint) and 8 PNGs."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from fsig_jax.convert.load import save_bundle  # pylint: disable=g-import-not-at-top
  data = tmp_path / 'babies'
  data.mkdir()
  for i, img in enumerate(tiny_images(8)):
    Image.fromarray(((img + 1) * 127.5).round().astype(np.uint8)).save(data / f'{i}.png')
  ckpt = save_bundle(tiny_bundle(), str(tmp_path / 'source'))
  wd = tmp_path / 'run'
  r = subprocess.run(
      [sys.executable, 'launch/main.py', '--config=configs/adam_babies.py',
       f'--config.model.checkpoint={ckpt}', '--config.model.resolution=0',
       f'--config.data.source={data}', '--config.steps=2', '--config.sample_every=0',
       '--config.hparams.pl_weight=0', '--config.hparams.r1_gamma=0',
       '--config.method.kwargs.adam.probe_steps=2',
       '--config.method.kwargs.adam.num_batch_fisher=1', f'--workdir={wd}'],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  assert 'method adam' in r.stderr and 'step 2/2' in r.stderr
  assert (wd / 'model').is_dir() and (wd / 'adam_importance.json').exists()
