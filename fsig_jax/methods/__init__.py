"""fsig_jax.methods."""
