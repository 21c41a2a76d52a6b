"""sandbox (riskrl): simulators where the theorems of RiskPO and RS-GRPO are checked numerically.

    from sandbox import BanditConfig, run_bandit, TabularConfig, run_tabular, CLAIMS
    res = run_bandit(BanditConfig.rs_grpo_paper(), [("rs_grpo", {"beta": b}) for b in (0, 4, 16)], seeds=4)
    res.metrics   # DataFrame: estimator, seed, step, expected_reward, entropy, prob_best
    res.policy    # DataFrame: estimator, step, arm, prob (mean over seeds)
    tab = run_tabular(TabularConfig(), [("grpo", {}), ("riskpo", {"bundle_size": 4})], seeds=3)
    tab.metrics   # DataFrame: estimator, seed, step, mean_reward, entropy, cov_logp_adv, pass_at_1, ...
    CLAIMS["thm2_covariance"]()  # dict of measured quantities with a boolean "holds"

CLI: ``python -m sandbox list`` / ``python -m sandbox <claim> --seeds N --out DIR``.
"""

from .bandit import BanditConfig, BanditResult, run_bandit
from .claims import *  # noqa: F401,F403  (claim_* functions, CLAIMS)
from .claims import CLAIMS
from .tabular import METRIC_COLUMNS, TabularConfig, TabularResult, run_tabular

__all__ = [
    "BanditConfig",
    "BanditResult",
    "run_bandit",
    "TabularConfig",
    "TabularResult",
    "run_tabular",
    "METRIC_COLUMNS",
    "CLAIMS",
]
