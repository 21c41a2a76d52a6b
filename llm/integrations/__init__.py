"""Adapters that run riskrl's advantage estimators inside other training frameworks.

``llm.integrations.trl`` — ``RiskGRPOTrainer``, a TRL ``GRPOTrainer`` whose
advantages come from ``theory.get_estimator`` (see docs/trl.md). Importing this
package does not import TRL; only the submodule does.
"""
