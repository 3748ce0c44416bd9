"""Configuration: one YAML file, validated strictly before anything starts."""
