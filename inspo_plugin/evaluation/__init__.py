"""Evaluation building blocks: verifiable-instruction checkers, generation with pass rates and
bootstrap confidence intervals, an optional pairwise judge, and training-curve plots.

Import the submodules directly (``inspo_plugin.evaluation.checkers`` and so on); nothing heavy is
imported here.
"""
