"""Command-line entry points (tyro). Thin: parse a config, call one function."""
