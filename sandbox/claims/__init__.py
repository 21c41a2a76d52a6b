"""Numerical checks of the theoretical claims of RiskPO (Ren et al., 2025, arXiv:2510.00911, v2) and
RS-GRPO (Jiang et al., 2025, arXiv:2509.24261), each checked against its statement as printed.

Modules (one per theme), each registering its claims with ``@register_claim``:

    riskpo_identities  Prop. 1, Thm. 1, Lemma 1
    riskpo_covariance  Thm. 2 and Thm. 3 under the literal Assumption 1 (Thm. 3: paper erratum)
    rs_grpo            RS-GRPO Lemmas 2–4 (finite step, every learning rate) and the 100-armed bandit
    training           the papers' training-dynamics claims in the tabular simulator

API: ``list_claims()`` / ``get_claim(name)`` (``Claim`` records with the text fields),
``CLAIMS[name](**kwargs) -> dict``. See docs/sandbox.md.
"""

# Import order is registration order, which is the order ``python -m sandbox all`` runs and lists them.
from . import riskpo_identities  # noqa: F401,I001
from . import riskpo_covariance  # noqa: F401
from . import rs_grpo  # noqa: F401
from . import training  # noqa: F401
from .registry import (
    CLAIMS,
    SIMULATION_CLAIMS,
    Claim,
    get_claim,
    list_claims,
    register_claim,
    size_overrides,
)
from .riskpo_covariance import (
    ASSUMPTION_1,
    INSTANCE_FAMILIES,
    INSTANCE_FAMILY_TEXT,
    claim_thm2_covariance,
    claim_thm3_tail_transforms,
    random_instances,
    thm3_counterexample,
    upper_tail_transforms,
)
from .riskpo_identities import claim_lemma1_layer_cake, claim_prop1_entropy_residual, claim_thm1_rvar_gradient
from .rs_grpo import claim_rs_bandit, claim_rs_lemma2, claim_rs_lemma3, claim_rs_lemma4, optimal_prob_change
from .training import (
    claim_bundle_size_sweep,
    claim_bundling_nonzero_gradient,
    claim_entropy_riskpo_vs_grpo,
    claim_passk_large_k,
    claim_risk_seeking_collapse,
)

__all__ = [
    "CLAIMS",
    "Claim",
    "list_claims",
    "get_claim",
    "register_claim",
    "size_overrides",
    "SIMULATION_CLAIMS",
    "optimal_prob_change",
    "random_instances",
    "INSTANCE_FAMILIES",
    "INSTANCE_FAMILY_TEXT",
    "ASSUMPTION_1",
    "thm3_counterexample",
    "upper_tail_transforms",
    "claim_prop1_entropy_residual",
    "claim_thm1_rvar_gradient",
    "claim_lemma1_layer_cake",
    "claim_thm2_covariance",
    "claim_thm3_tail_transforms",
    "claim_rs_lemma2",
    "claim_rs_lemma3",
    "claim_rs_lemma4",
    "claim_rs_bandit",
    "claim_entropy_riskpo_vs_grpo",
    "claim_risk_seeking_collapse",
    "claim_bundling_nonzero_gradient",
    "claim_passk_large_k",
    "claim_bundle_size_sweep",
]
