"""Runner presets, option validation, local services and the launcher CLI."""
