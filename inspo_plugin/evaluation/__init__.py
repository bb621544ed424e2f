"""Evaluation building blocks: verifiable-instruction checkers, generation with pass rates and
bootstrap confidence intervals, held-out preference accuracy and margins against a reference
(``preference``), an optional pairwise judge, training-curve plots, and the report that combines
them (``report``).

Import the submodules directly (``inspo_plugin.evaluation.checkers`` and so on); nothing heavy is
imported here.
"""
