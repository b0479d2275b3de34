"""FID Inception-v3: torch-name mapping both ways, loader errors, (N, 2048) output."""
import numpy as np
import pytest

from fsig_jax.metrics import inception


def _random_state_dict(seed=0):
  """Random pytorch-fid-style weights of the right shapes that keep activations finite."""
  rng = np.random.RandomState(seed)
  sd = {}
  for name, shape in inception.expected_state_dict_shapes().items():
    if name.endswith("conv.weight"):
      sd[name] = (rng.randn(*shape) * np.sqrt(2.0 / np.prod(shape[1:]))).astype(np.float32)
    elif name.endswith(("running_var", "bn.weight")):
      sd[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    else:
      sd[name] = (0.1 * rng.randn(*shape)).astype(np.float32)
  return sd


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
  images = np.tanh(np.random.RandomState(1).randn(2, 48, 48, 3)).astype(np.float32)
  feats = np.asarray(extractor(images))
  assert feats.shape == (2, 2048) and np.all(np.isfinite(feats)) and np.all(feats >= 0)
  assert not np.allclose(feats[0], feats[1])


def test_loader_errors_name_the_key():
  sd = _random_state_dict()
  missing = dict(sd)
  del missing["Mixed_6e.branch7x7dbl_3.bn.running_mean"]
  with pytest.raises(ValueError, match="Mixed_6e.branch7x7dbl_3.bn.running_mean"):
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
