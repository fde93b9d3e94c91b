"""Training recipes that reproduce mmzoo's shipped presets."""
