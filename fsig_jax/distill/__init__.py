"""Student trainers: generators distilled into fast conditional networks.

gpd.py: GAN Prior Distillation (a translation student from a source/adapted
generator pair); kdit.py: KDIT stage 1 (style-mixed triplets into StarGAN v2);
stargan.py: StarGAN v2 on limited real data (KDIT stage 2, and from scratch).
"""
