"""Translate a folder of images with a trained student (GPD, KDIT) and write the outputs.

  python launch/translate.py --student=runs/gpd_anime_sketch --input=photos/ --output=sketches/
  # a StarGAN v2 (KDIT) student: the target domain, and a reference image or a latent seed
  python launch/translate.py --student=runs/kdit_s2 --input=photos/ --output=out/ --domain=1 \
      --reference=sketch.png
  python launch/translate.py --student=runs/kdit_s2 --input=photos/ --output=out/ --domain=1 \
      --seed=0

--student is the student's training workdir or its model/ directory. Every
image of --input is center-cropped and resized to the student's resolution
(the library's one loader), translated, and written to --output as
NAME.png, NAME the input's file name without its extension.
"""
import pathlib

from absl import flags

from fsig_jax import api
from fsig_jax.data.images import list_image_files, load_image_files, write_image_folder
from fsig_jax.errors import FsigError
from fsig_jax.utils.cli import fail, run_main
from fsig_jax.utils.logs import quiet_logs

STUDENT = flags.DEFINE_string('student', None, 'student workdir or model/ directory',
                              required=True)
INPUT = flags.DEFINE_string('input', None, 'folder of input images', required=True)
OUTPUT = flags.DEFINE_string('output', None, 'folder for the translated images', required=True)
BATCH = flags.DEFINE_integer('batch', 32, 'images per forward pass')
DOMAIN = flags.DEFINE_integer('domain', None, 'StarGAN v2 students: the target domain index')
REFERENCE = flags.DEFINE_string('reference', None, 'StarGAN v2 students: a reference image '
                                'whose style every output takes')
SEED = flags.DEFINE_integer('seed', None, 'StarGAN v2 students: latent-guided, styles from '
                            'this seed')


def main(argv):
  del argv
  quiet_logs()
  try:
    student = api.load_student(STUDENT.value, batch_size=BATCH.value)
    files = list_image_files(pathlib.Path(INPUT.value))
    images = load_image_files(files, student.resolution, where=INPUT.value)
    arch = getattr(student.config, 'arch', '')
    if arch == 'spade_student':  # conditions in: sketch maps, or images embedded with VGG16
      if DOMAIN.value is not None or REFERENCE.value:
        fail('a KDIT SPADE student takes conditions and --seed only')
      cond = images
      if student.config.cond == 'vector':
        from fsig_jax.metrics import features  # pylint: disable=g-import-not-at-top
        cond = features.extract_features(features.vgg16_features(), images)
      out = student(cond, seed=SEED.value or 0)
    elif arch == 'stargan_v2':
      if DOMAIN.value is None or (REFERENCE.value is None) == (SEED.value is None):
        fail('a StarGAN v2 student needs --domain and one of --reference=IMAGE or --seed=N')
      ref = (None if REFERENCE.value is None else
             load_image_files([REFERENCE.value], student.resolution, where='--reference'))
      try:
        out = student(images, DOMAIN.value, reference=ref, seed=SEED.value)
      except ValueError as e:
        fail(str(e))
    else:
      if DOMAIN.value is not None or REFERENCE.value or SEED.value is not None:
        fail('--domain, --reference and --seed are for StarGAN v2 students; this student '
             f'({student.config.arch}) takes an image only')
      out = student(images)
    paths = write_image_folder(out, OUTPUT.value, names=[f.stem for f in files])
  except FsigError as e:
    fail(str(e))
  print(f'wrote {len(paths)} images ({student.resolution}px) to {OUTPUT.value}')


if __name__ == '__main__':
  run_main(main)
