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
