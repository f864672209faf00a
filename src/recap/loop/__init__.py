"""The Recap loop (Algorithm 1): collect, train the value, relabel, train the policy, evaluate.

Modules: ``recap_loop`` (``run_loop``, Algorithm 1 on one screen), ``run`` (``LoopRun``: what the stages
share, and the episodes each stage reads, chosen by provenance), ``experience`` (demonstrations, collection,
evaluation), ``training_stages`` (value, labels, policy, SFT), ``stages`` (resumable stage directories),
``config`` and ``presets``.

Importing this package imports nothing else: ``recap.loop.presets`` is loaded with the registry.
"""
