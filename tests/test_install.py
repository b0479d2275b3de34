"""A non-editable install works without the repository: from an installed copy
of the package (no checkout on the path, a working directory outside it) Python
can load a model, generate, adapt and evaluate (README, "Set up")."""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT

SCRIPT = textwrap.dedent('''
    import os, sys
    import numpy as np
    import fsig_jax
    from fsig_jax.convert.load import load_model
    from fsig_jax.metrics.evaluate import evaluate
    import importlib.util
    site = sys.argv[1]
    assert importlib.util.find_spec('configs') is None  # no checkout on the path
    assert os.path.realpath(fsig_jax.__file__).startswith(os.path.realpath(site)), fsig_jax.__file__
    bundle = load_model('random:16', setting='model')         # load
    import jax
    imgs = bundle.generate(bundle.sample_z(jax.random.PRNGKey(0), 4))  # generate
    assert imgs.shape == (4, 16, 16, 3), imgs.shape
    shots = np.random.RandomState(0).randint(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    adapted, state = fsig_jax.adapt(bundle, shots, method='cdc', steps=2, batch_size=2,  # adapt
                                    log_every=1, sample_every=0, eval_every=0)
    out = evaluate(adapted, few_shot=shots, num_samples=8, metrics='fid_vgg,intra_lpips')  # evaluate
    assert np.isfinite(out['FID-VGG']) and np.isfinite(out['intra-LPIPS']), out
    print('INSTALLED-OK', int(state['step']))
''')


@pytest.mark.slow
def test_non_editable_install_loads_generates_adapts_evaluates(tmp_path):
  site, src = tmp_path / 'site', tmp_path / 'src'  # a copy: setuptools builds in-tree
  shutil.copytree(ROOT / 'fsig_jax', src / 'fsig_jax',
                  ignore=shutil.ignore_patterns('__pycache__'))
  for name in ('setup.cfg', 'pyproject.toml', 'README.md'):
    shutil.copy(ROOT / name, src / name)
  build = subprocess.run(
      [sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--no-build-isolation',
       '--no-index', '--target', str(site), str(src)],
      capture_output=True, text=True, timeout=600)
  assert build.returncode == 0, build.stderr[-3000:]
  assert (site / 'fsig_jax' / 'api.py').exists()
  assert not (site / 'launch').exists() and not (site / 'configs').exists()
  work = tmp_path / 'elsewhere'
  work.mkdir()
  env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'FSIG_SHARED')}
  env['PYTHONPATH'] = str(site)
  r = subprocess.run([sys.executable, '-c', SCRIPT, str(site)], cwd=work, env=env,
                     capture_output=True, text=True, timeout=900)
  assert r.returncode == 0, r.stderr[-4000:]
  assert 'INSTALLED-OK 2' in r.stdout, r.stdout[-2000:]
