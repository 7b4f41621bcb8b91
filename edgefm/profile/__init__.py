"""``edgefm profile``: host latency, memory and size of every artifact variant, target estimates
from the firmware simulator, and a pass/fail budget check.

    from edgefm.profile import profile, write_reports
    res = profile(["runs/default"], device="nrf52840", budget="budget.toml")
    write_reports(res, "runs/default/profile")
"""

from edgefm.profile.budget import Budget, BudgetRow, KNOWN_KEYS, check_budget, load_budget
from edgefm.profile.core import ProfileResult, collect_variants, profile
from edgefm.profile.latency import LatencyStats, Measurement, measure
from edgefm.profile.report import plot_battery, plot_energy, plot_latency, to_html, to_markdown, write_reports
from edgefm.profile.variants import Variant, discover, variant_for

__all__ = ["Budget", "BudgetRow", "KNOWN_KEYS", "check_budget", "load_budget", "ProfileResult",
           "collect_variants", "profile", "LatencyStats", "Measurement", "measure", "plot_battery",
           "plot_energy", "plot_latency", "to_html", "to_markdown", "write_reports", "Variant", "discover",
           "variant_for"]
