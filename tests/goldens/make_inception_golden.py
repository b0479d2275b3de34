"""Makes tests/goldens/inception_pool3.npz: pytorch-fid's own pool3 features for
seeded random Inception weights and images (run by hand; tests only read the output).

  python tests/goldens/make_inception_golden.py \
      --pytorch_fid=PATH/pytorch-fid/src/pytorch_fid/inception.py \
      --torchvision=PATH/vision/torchvision/models/inception.py

Needs torch (made with torch==2.13.0+cpu), numpy and two source files, neither
installed nor vendored: pytorch-fid's `inception.py` (github.com/mseitzer/pytorch-fid,
commit b9c18118d082cbd263c1b8963fc4221dc1cbb659) and torchvision's
`torchvision/models/inception.py` (github.com/pytorch/vision, commit
02a0a90b7ad1e9d69f1f392ad6701eb069f7db02; pytorch-fid subclasses its blocks).
torchvision itself is not needed: the script builds a minimal `torchvision`
package in a temp folder around that one file (version 0.12, so pytorch-fid
takes its `pretrained=False` path; `_log_api_usage_once` is a no-op).

pytorch-fid's `fid_inception_v3()` downloads the FID weights; here its
`load_state_dict_from_url` is replaced by `random_state_dict` of the model's
own state-dict names and shapes (fc and num_batches_tracked: zeros), a pure
numpy recipe that tests/test_metrics_inception.py regenerates from the same
seed. The features are `InceptionV3([3])(images)` (resize_input and
normalize_input on, as pytorch-fid's fid_score.py uses it), images NCHW in [0, 1].
"""
import argparse
import os
import shutil
import sys
import tempfile

import numpy as np

SEED = 2015
NUM_IMAGES, IMAGE_SIZE = 3, 64
GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'inception_pool3.npz')


def random_state_dict(shapes, seed=SEED):
  """{name: float32 array} for the BasicConv2d weights of `shapes` (name -> torch shape),
  drawn in sorted-name order: He-scaled convs, BatchNorm scales and variances in
  [0.5, 1.5], biases and means N(0, 0.1^2), so 94 layers keep finite, varied activations.
  Other names (fc.*, num_batches_tracked) are skipped."""
  rng = np.random.default_rng(seed)
  out = {}
  for name in sorted(shapes):
    shape = tuple(shapes[name])
    if name.endswith('conv.weight'):
      out[name] = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
    elif name.endswith(('bn.weight', 'bn.running_var')):
      out[name] = rng.uniform(0.5, 1.5, shape)
    elif name.endswith(('bn.bias', 'bn.running_mean')):
      out[name] = 0.1 * rng.standard_normal(shape)
    else:
      continue
    out[name] = out[name].astype(np.float32)
  return out


def images(seed=SEED):
  """(NUM_IMAGES, IMAGE_SIZE, IMAGE_SIZE, 3) float32 in [0, 1] on the uint8 grid: smooth
  random colour fields plus pixel noise."""
  rng = np.random.default_rng(seed + 1)
  coarse = rng.uniform(0, 1, (NUM_IMAGES, 4, 4, 3))
  smooth = np.repeat(np.repeat(coarse, IMAGE_SIZE // 4, 1), IMAGE_SIZE // 4, 2)
  noisy = np.clip(smooth + 0.2 * rng.standard_normal(smooth.shape), 0, 1)
  return (np.round(noisy * 255) / 255).astype(np.float32)


def _import_pytorch_fid(pytorch_fid, torchvision, tmp):
  """pytorch-fid's inception module, on a minimal torchvision built around one file."""
  pkg = os.path.join(tmp, 'torchvision')
  os.makedirs(os.path.join(pkg, 'models'))
  files = {
      '__init__.py': "__version__ = '0.12.0'\nfrom . import models\n",
      '_internally_replaced_utils.py': 'from torch.hub import load_state_dict_from_url\n',
      'utils.py': 'def _log_api_usage_once(obj):\n  del obj\n',
      os.path.join('models', '__init__.py'): ('from . import inception\n'
                                              'from .inception import inception_v3\n'),
  }
  for name, text in files.items():
    with open(os.path.join(pkg, name), 'w') as f:
      f.write(text)
  shutil.copy(torchvision, os.path.join(pkg, 'models', 'inception.py'))
  shutil.copy(pytorch_fid, os.path.join(tmp, 'pytorch_fid_inception.py'))
  sys.path.insert(0, tmp)
  import pytorch_fid_inception  # pylint: disable=g-import-not-at-top
  return pytorch_fid_inception


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--pytorch_fid', required=True, help="pytorch-fid's inception.py")
  parser.add_argument('--torchvision', required=True,
                      help="torchvision's torchvision/models/inception.py")
  parser.add_argument('--out', default=GOLDEN)
  args = parser.parse_args()
  import torch  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(1)  # deterministic accumulation order on CPU
  with tempfile.TemporaryDirectory() as tmp:
    pfid = _import_pytorch_fid(args.pytorch_fid, args.torchvision, tmp)

    shapes = {}

    def weights(url, progress=True):
      """Stands in for the download: random weights for the model being built."""
      del url, progress
      model = sys._getframe(1).f_locals['inception']  # pylint: disable=protected-access
      shapes.update({k: tuple(v.shape) for k, v in model.state_dict().items()})
      sd = {k: np.zeros(v, np.float32) for k, v in shapes.items()}
      sd.update(random_state_dict(shapes))
      return {k: torch.from_numpy(v).to(model.state_dict()[k].dtype) for k, v in sd.items()}

    pfid.load_state_dict_from_url = weights
    model = pfid.InceptionV3([pfid.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    x = torch.from_numpy(np.ascontiguousarray(np.transpose(images(), (0, 3, 1, 2))))
    with torch.no_grad():
      feats = model(x)[0].reshape(NUM_IMAGES, 2048).numpy().astype(np.float32)
  # The weight file's names and shapes (fid_inception_v3's state dict).
  names = np.array([f'{k}:{",".join(map(str, v))}' for k, v in shapes.items()])
  np.savez_compressed(args.out, features=feats, state_dict_shapes=names,
                      torch_version=np.array(torch.__version__))
  print(f'wrote {args.out}: features {feats.shape}, |f| mean {np.abs(feats).mean():.4g}')


if __name__ == '__main__':
  main()
