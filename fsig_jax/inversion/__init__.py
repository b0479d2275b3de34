"""Inversion: finding the latents of a StyleGAN2 that reproduce a given image.

projector.py: stylegan2-ada-pytorch's optimisation-based projection into W (or
W+) and the noise inputs, with the LPIPS-VGG distance.
"""
