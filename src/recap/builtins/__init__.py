"""Built-in plugins: shipped with the core and registered through the same manager as third-party ones."""
