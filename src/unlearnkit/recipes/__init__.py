"""Recipes: one module per workflow, built from the shared layers below (docs/architecture.md).

- :mod:`.lm` — ``unlearnkit run``: the language-model benchmark (with ``continual=k``)
- :mod:`.vision` — ``unlearnkit run vision``: the image-classifier label-domain benchmark
- :mod:`.evaluate` — ``unlearnkit eval``; :mod:`.unlearn` — ``unlearnkit unlearn``
- :mod:`.build` — ``unlearnkit data build`` / ``models build``
- :mod:`.calibrate`, :mod:`.reliability`, :mod:`.sweep` — reliable comparison
- :mod:`.analyses` — ``gradient``, ``squeeze``, ``layers``

Recipes use the run layer (:mod:`unlearnkit.results`) and each other's *public* functions only.
"""
