"""Adapters that run riskrl's advantage estimators inside other training frameworks.

``llm.integrations.trl`` — ``RiskGRPOTrainer``, a TRL ``GRPOTrainer`` whose
advantages come from ``theory.get_estimator`` (see docs/trl.md).
``llm.integrations.verl`` — every registry estimator as a verl advantage estimator
(``riskrl_<name>``), loaded by verl through the ``verl.plugins`` entry point (see docs/verl.md).
Importing this package imports neither TRL nor verl; only the submodules do.
"""
