"""Student trainers: knowledge distilled from generators into fast conditional networks (gpd.py: GAN Prior Distillation)."""
