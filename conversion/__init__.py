"""conversion: reading other checkpoint formats into the canonical safetensors checkpoint."""
