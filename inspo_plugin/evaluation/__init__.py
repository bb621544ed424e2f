"""Evaluation building blocks: verifiable-instruction checkers (``checkers``), generation with
constraint pass rates (``generation``), bootstrap confidence intervals, win rates and paired
differences (``stats``), held-out preference accuracy and margins against a reference
(``preference``), an optional pairwise judge (``judge``), training-curve plots (``plots``), and the
report that combines them (``report``).

Import the submodules directly (``inspo_plugin.evaluation.checkers`` and so on); nothing heavy is
imported here.
"""
