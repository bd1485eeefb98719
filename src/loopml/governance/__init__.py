"""Governance: API tokens (who may do what) and the audit trail (what was done, provably).

Public module of the service. Imports `loopml.store` and the domain; never the server, CLI or SDK.
"""

from loopml.governance.service import GovernanceService

__all__ = ["GovernanceService"]
