"""The use-case layer: each thing a user does, in one place, for every face.

The CLI and the dashboard parse input, call these and render what comes back; neither holds business rules
of its own. ``suites`` (a suite run's policy, cases, creation and finish), ``scoring`` (scores that need the
whole run: embedding, custom scorers, an LLM judge), ``arena`` (vote pairs and rankings), ``recommend``
(the advisor over the catalog and this user's runs), ``providers`` (whether a provider is ready here).

This layer may import the core, the engine and the store; it never imports a face (``cli``, ``web``).
"""
