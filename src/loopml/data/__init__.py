"""Data service: reference profiles of datasets and data contracts (inference, YAML, batch and row checks).

Owns dataset fingerprints (`fingerprint`), `Profile` / `build_profile`, `Contract` / `infer_contract` /
`validate_batch` / `compile_row_validator`. Imports numpy, pandas, pyarrow and PyYAML, the domain and `loopml.errors`;
it must not import the store, the server, the CLI or other services (monitoring builds on it).
"""

from loopml.data._columns import Column, Source, Table
from loopml.data.contracts import (
    CategoryCheck,
    ColumnContract,
    Contract,
    FreshnessCheck,
    NullCheck,
    RangeCheck,
    RowCountCheck,
    RowValidator,
    Severity,
    TypeCheck,
    UniqueCheck,
    Violation,
    compile_row_validator,
    infer_contract,
)
from loopml.data.fingerprints import content_digest, fingerprint
from loopml.data.profiles import (
    SPREAD_TOLERANCE,
    ColumnProfile,
    Profile,
    build_profile,
    negligible_spread,
    segment_rows,
)
from loopml.data.validation import CheckResult, ContractReport, validate_batch

__all__ = [
    "SPREAD_TOLERANCE",
    "CategoryCheck",
    "CheckResult",
    "Column",
    "ColumnContract",
    "ColumnProfile",
    "Contract",
    "ContractReport",
    "FreshnessCheck",
    "NullCheck",
    "Profile",
    "RangeCheck",
    "RowCountCheck",
    "RowValidator",
    "Severity",
    "Source",
    "Table",
    "TypeCheck",
    "UniqueCheck",
    "Violation",
    "build_profile",
    "compile_row_validator",
    "content_digest",
    "fingerprint",
    "infer_contract",
    "negligible_spread",
    "segment_rows",
    "validate_batch",
]
