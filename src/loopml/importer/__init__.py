"""Importing other tools' stores into loopml: `MlflowStoreImport` copies an MLflow tracking store (SQLite
database and artifact directory, read through `MlflowSource`) into loopml's metadata and artifact stores.

A service package: imports ports, the domain and other services' public modules (`loopml.registry` for the
MLflow model importer); never the server, CLI or SDK. Reading the MLflow store needs no mlflow install.
"""

from loopml.importer.mlflow_source import MlflowSource
from loopml.importer.mlflow_store import ImportReport, MlflowStoreImport, Progress

__all__ = ["ImportReport", "MlflowSource", "MlflowStoreImport", "Progress"]
