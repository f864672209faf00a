"""The Recap loop (Algorithm 1): collect, train the value, relabel, train the policy, evaluate.

Importing this package imports nothing else: ``recap.loop.presets`` is loaded with the registry.
"""
