"""The convert and generate command-line tools, run as a user would."""
import subprocess
import sys

import numpy as np
from PIL import Image

from conftest import ROOT, shared_path


def run(*args):
  return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                        timeout=300)


def test_convert_then_generate_grid(tmp_path):
  pkl = shared_path('conformance', 'ada_32px.pkl')
  out = tmp_path / 'ckpt'
  r = run('launch/convert.py', f'--input={pkl}', f'--output={out}')
  assert r.returncode == 0, r.stderr
  assert 'wrote' in r.stdout and '32px' in r.stdout
  png = tmp_path / 'grid.png'
  r = run('launch/generate.py', f'--checkpoint={out}', f'--out={png}', '--num=6',
          '--truncation=0.7')
  assert r.returncode == 0, r.stderr
  img = np.asarray(Image.open(png))
  assert img.shape == (2 + 2 * 34, 2 + 3 * 34, 3)  # 6 samples of 32px in a 3x2 grid
  assert img.std() > 10  # not a blank image
  # Converting again without --overwrite refuses instead of clobbering.
  r = run('launch/convert.py', f'--input={pkl}', f'--output={out}')
  assert r.returncode != 0 and '--overwrite' in r.stderr


def test_generate_reports_bad_checkpoint_clearly(tmp_path):
  bad = tmp_path / 'model.pt'
  bad.write_bytes(b'\x89PNG\r\n\x1a\n not a checkpoint')
  r = run('launch/generate.py', f'--checkpoint={bad}', f'--out={tmp_path / "x.png"}')
  assert r.returncode != 0
  assert str(bad) in r.stderr and 'unknown checkpoint format' in r.stderr
  assert 'Traceback' not in r.stderr


def test_make_targets_writes_deterministic_sketches(tmp_path):
  pkl = shared_path('conformance', 'ada_32px.pkl')
  outs = []
  for name in ('a', 'b'):
    out = tmp_path / name
    r = run('launch/make_targets.py', f'--checkpoint={pkl}', f'--out={out}', '--num=3',
            '--seed=7')
    assert r.returncode == 0, r.stderr
    outs.append(out)
  files = sorted(p.name for p in outs[0].glob('*.png'))
  assert files == ['sketch_00000.png', 'sketch_00001.png', 'sketch_00002.png']
  for f in files:
    a, b = (np.asarray(Image.open(o / f)) for o in outs)
    np.testing.assert_array_equal(a, b)  # same model + seed -> same target
    assert a.shape == (32, 32, 3) and np.all(a[..., 0] == a[..., 1])  # gray drawing as RGB
  assert '--seed=7' in (outs[0] / 'PROVENANCE.txt').read_text()
  r = run('launch/make_targets.py', f'--checkpoint={tmp_path / "missing"}', '--out=x')
  assert r.returncode == 2 and 'does not exist' in r.stderr and 'Traceback' not in r.stderr


def test_readme_setup_generates_the_shipped_models_faces(tmp_path):
  """The README's set-up command draws 16 faces of the shipped model (not a
  random-weight conformance file): the grid equals the model's own images."""
  import re  # pylint: disable=g-import-not-at-top
  import fsig_jax  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from fsig_jax.utils.images import make_grid  # pylint: disable=g-import-not-at-top
  readme = (ROOT / 'README.md').read_text()
  setup = readme[readme.index('## Set up'):readme.index('## Test')]
  line = re.search(r'^python (launch/generate\.py .*)$', setup, re.M).group(1).split()
  assert '--checkpoint=models/anime64' in line, line
  png = tmp_path / 'samples.png'
  r = run(*[a if not a.startswith('--out=') else f'--out={png}' for a in line])
  assert r.returncode == 0, r.stderr[-2000:]
  bundle = fsig_jax.load_pretrained(str(ROOT / 'models' / 'anime64'))
  zkey, nkey = jax.random.split(jax.random.PRNGKey(0))
  want = make_grid(np.asarray(bundle.generate(bundle.sample_z(zkey, 16),
                                              key=jax.random.fold_in(nkey, 0))))
  got = np.asarray(Image.open(png))
  assert got.shape == want.shape == (2 + 4 * 66, 2 + 4 * 66, 3)
  assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
