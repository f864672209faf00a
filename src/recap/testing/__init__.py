"""Test support that ships with recap: conformance suites per protocol (subclass them in a plugin's tests),
tiny real models, and helpers for building hermetic plugin registries."""
