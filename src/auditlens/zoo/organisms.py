"""The trained model organisms (learned and cheated twins)."""
