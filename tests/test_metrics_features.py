"""The feature-extractor interface and the offline VGG16 ("FID-VGG") extractor."""
import jax
import numpy as np
import pytest

from fsig_jax.metrics import features


def _images(n, size, seed=0):
  return np.tanh(np.random.RandomState(seed).randn(n, size, size, 3)).astype(np.float32)


def test_vgg16_extractor_shape_name_label():
  ext = features.vgg16_features()
  assert ext.name == "vgg16-lpips" and ext.dim == 512 and ext.label == "FID-VGG"
  feats = np.asarray(ext(_images(2, 64)))
  assert feats.shape == (2, 512) and feats.dtype == np.float32 and np.all(feats >= 0)
  small = np.asarray(jax.jit(ext.fn)(_images(2, 32)))  # Upsampled to 64 px inside.
  assert small.shape == (2, 512) and np.all(np.isfinite(small))


def test_extract_features_batches_like_one_call():
  ext = features.vgg16_features()
  imgs = _images(5, 64, seed=1)
  batched = features.extract_features(ext, imgs, batch_size=2)
  np.testing.assert_allclose(batched, np.asarray(ext(imgs)), rtol=1e-4, atol=1e-4)
  listed = features.extract_features(ext, list(imgs), batch_size=8)
  assert listed.shape == (5, 512)


def test_mixed_sizes_and_bad_inputs_raise():
  ext = features.vgg16_features()
  with pytest.raises(ValueError, match="mixed sizes"):
    features.extract_features(ext, [np.zeros((64, 64, 3)), np.zeros((32, 32, 3))])
  with pytest.raises(ValueError, match="NHWC RGB"):
    features.extract_features(ext, np.zeros((2, 64, 64)))
  with pytest.raises(ValueError, match=r"\[-1, 1\]"):
    features.extract_features(ext, np.full((1, 64, 64, 3), 255.0))


def test_metric_labels():
  assert features.metric_label("vgg16-lpips", "KID") == "KID-VGG"
  assert features.metric_label("inception-v3-fid-2015-12-05") == "FID"
  assert features.metric_label("clip-vit-b32") == "FID[clip-vit-b32]"


def test_vgg16_features_match_an_independent_torch_computation():
  """relu5_3 spatial means recomputed with torch's own ops from the same weights: the
  VGG16 "D" layer list of torchvision's `vgg16().features[:30]` (13 3x3 convs with
  padding 1 and ReLU, 2x2 max pools after conv 2, 4, 7, 10; relu5_3 is the last ReLU),
  LPIPS's ScalingLayer constants (richzhang/PerceptualSimilarity, lpips/lpips.py
  ScalingLayer), and F.interpolate (bilinear, half-pixel) for inputs below 64 px."""
  torch = pytest.importorskip("torch")
  fn = torch.nn.functional
  from fsig_jax.metrics import lpips as lpips_lib  # pylint: disable=g-import-not-at-top
  trunk = lpips_lib.vgg16_trunk()
  convs = [trunk[f"Conv_{i}"] for i in range(13)]
  assert len(trunk) == 13
  shift = torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1)
  scale = torch.tensor([.458, .448, .450]).view(1, 3, 1, 1)
  layers = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]

  def reference(images):
    x = torch.from_numpy(np.ascontiguousarray(np.transpose(images, (0, 3, 1, 2))))
    if x.shape[-1] < 64:
      x = fn.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
    x = (x - shift) / scale
    k = 0
    for layer in layers:
      if layer == "M":
        x = fn.max_pool2d(x, 2, 2)
        continue
      w = torch.from_numpy(np.ascontiguousarray(np.transpose(np.asarray(convs[k]["kernel"]),
                                                             (3, 2, 0, 1))))
      assert w.shape[0] == layer
      x = fn.relu(fn.conv2d(x, w, torch.from_numpy(np.array(convs[k]["bias"])), padding=1))
      k += 1
    return x.mean(dim=(2, 3)).numpy()

  ext = features.vgg16_features()
  for size in (64, 32):
    imgs = _images(2, size, seed=size)
    want = reference(imgs)
    got = np.asarray(ext(imgs))
    assert np.abs(want).max() > 0.1
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
