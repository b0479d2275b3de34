"""FID Inception-v3: torch-name mapping both ways, pytorch-fid's weight file read without
torch, loader errors, and pool3 features against pytorch-fid's own (a committed golden)."""
import collections

import numpy as np
import pytest

import torch_writer
from conftest import ROOT
from fsig_jax.errors import CheckpointError
from fsig_jax.metrics import inception
from goldens import make_inception_golden as golden

GOLDEN = ROOT / 'tests' / 'goldens' / 'inception_pool3.npz'


def _random_state_dict(seed=golden.SEED):
  """Random pytorch-fid-style weights of the right shapes (the golden's recipe)."""
  return golden.random_state_dict(inception.expected_state_dict_shapes(), seed)


def test_state_dict_names_and_shapes():
  shapes = inception.expected_state_dict_shapes()
  # 94 BasicConv2d, each conv.weight + bn.{weight, bias, running_mean, running_var}.
  assert len(shapes) == 94 * 5
  assert shapes["Conv2d_1a_3x3.conv.weight"] == (32, 3, 3, 3)
  assert shapes["Mixed_5b.branch1x1.conv.weight"] == (64, 192, 1, 1)
  assert shapes["Mixed_6b.branch7x7_2.conv.weight"] == (128, 128, 1, 7)
  assert shapes["Mixed_7c.branch_pool.conv.weight"] == (192, 2048, 1, 1)
  assert shapes["Mixed_7c.branch_pool.bn.running_var"] == (192,)


def test_npz_roundtrip_and_forward(tmp_path):
  sd = _random_state_dict()
  path = tmp_path / "inception.npz"
  ignored = {"fc.weight": np.zeros((1008, 2048), np.float32), "fc.bias": np.zeros(1008, np.float32),
             "Conv2d_1a_3x3.bn.num_batches_tracked": np.int64(0)}
  np.savez(path, **sd, **ignored)
  variables = inception.load_inception_weights(str(path))
  back = inception.variables_to_state_dict(variables)
  assert set(back) == set(sd)
  for k in sd:
    np.testing.assert_array_equal(back[k], sd[k])

  extractor = inception.inception_features(path)
  assert extractor.name == "inception-v3-fid-2015-12-05"
  assert extractor.dim == 2048 and extractor.label == "FID"
  feats = np.asarray(extractor(2 * golden.images() - 1))  # [0, 1] -> [-1, 1]
  assert feats.shape == (3, 2048) and np.all(np.isfinite(feats)) and np.all(feats >= 0)
  assert not np.allclose(feats[0], feats[1])
  # pytorch-fid's InceptionV3([3]) on the same weights and images (tests/goldens/
  # make_inception_golden.py ran pytorch-fid's inception.py with torch 2.13).
  with np.load(GOLDEN) as g:
    want, names = g["features"], list(g["state_dict_shapes"])
  theirs = {n.split(":")[0]: tuple(int(d) for d in n.split(":")[1].split(",") if d)
            for n in names}
  ours = inception.expected_state_dict_shapes()
  assert {k: v for k, v in theirs.items() if k in ours} == ours
  assert sorted(set(theirs) - set(ours)) == sorted(
      ["fc.weight", "fc.bias"] + [k[:-len("running_mean")] + "num_batches_tracked"
                                  for k in ours if k.endswith("running_mean")])
  scale = np.abs(want).max()
  np.testing.assert_allclose(feats, want, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_reads_pytorch_fid_weight_file_like_the_npz(tmp_path, fmt):
  """pytorch-fid's pt_inception-2015-12-05-*.pth is a torch.save of an OrderedDict state
  dict (with fc.* and num_batches_tracked); read without torch, it gives exactly the
  variables of the npz path."""
  sd = _random_state_dict(seed=3)
  extra = {"fc.weight": np.ones((1008, 2048), np.float32), "fc.bias": np.ones(1008, np.float32)}
  full = collections.OrderedDict(sd)
  for name in list(sd):
    if name.endswith("running_var"):
      full[name[:-len("running_var")] + "num_batches_tracked"] = np.array(0, np.int64)
  full.update(extra)
  pth = tmp_path / "pt_inception-2015-12-05-test.pth"
  torch_writer.save(full, pth, fmt)
  npz = tmp_path / "inception.npz"
  np.savez(npz, **sd)
  from_pth = inception.load_inception_weights(pth)
  from_npz = inception.load_inception_weights(str(npz))
  a, b = inception._flat(from_pth), inception._flat(from_npz)  # pylint: disable=protected-access
  assert set(a) == set(b) and len(a) == len(sd)
  for k in a:
    np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=str(k))


def test_weight_file_errors_name_the_file(tmp_path):
  with pytest.raises(CheckpointError, match=r"missing.pth: no such file; download pytorch-fid"):
    inception.load_inception_weights(tmp_path / "missing.pth")
  not_sd = tmp_path / "list.pth"
  torch_writer.save([np.zeros(3, np.float32)], not_sd)
  with pytest.raises(CheckpointError, match=r"list.pth: not a state dict of tensors"):
    inception.load_inception_weights(not_sd)
  png = tmp_path / "x.pth"
  png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
  with pytest.raises(CheckpointError, match="PNG image"):
    inception.load_inception_weights(png)


def test_loader_errors_name_the_key():
  sd = _random_state_dict()
  missing = dict(sd)
  del missing["Mixed_6e.branch7x7dbl_3.bn.running_mean"]
  with pytest.raises(CheckpointError, match="Mixed_6e.branch7x7dbl_3.bn.running_mean"):
    inception.state_dict_to_variables(missing)
  wrong = dict(sd)
  wrong["Mixed_5b.branch5x5_2.conv.weight"] = np.zeros((64, 48, 3, 3), np.float32)
  pattern = r"Mixed_5b.branch5x5_2.conv.weight.*\(64, 48, 3, 3\).*\(64, 48, 5, 5\)"
  with pytest.raises(ValueError, match=pattern):
    inception.state_dict_to_variables(wrong)
  extra = dict(sd)
  extra["AuxLogits.fc.weight"] = np.zeros((1000, 768), np.float32)
  with pytest.raises(ValueError, match="AuxLogits.fc.weight"):
    inception.state_dict_to_variables(extra)
