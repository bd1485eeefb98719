"""Model registry: registered models, versions and aliases (`RegistryService`), and the model package
format: flavors, signatures, and the verified, self-describing package directory.

A service package: imports ports, the domain and other services' public modules only. Importing it must not
import pandas or any ML library (scikit-learn, xgboost, lightgbm, onnxruntime): flavors import theirs lazily.

Names are imported on first use: loading a package directory (`load_model`) does not import the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml._lazy import lazy_attributes

if TYPE_CHECKING:
    from loopml.registry.flavors import FLAVORS, Flavor, flavor_for, register_flavor
    from loopml.registry.logged_models import LoggedModelService
    from loopml.registry.manifest import DatasetRef, Manifest
    from loopml.registry.mlflow_import import import_mlflow
    from loopml.registry.package import LoadedModel, ModelPackage, load_model, save_model, verify_package
    from loopml.registry.package_check import PackageCheck, PackageFile, check_package
    from loopml.registry.pickle_guard import forbid_pickle_in_this_process
    from loopml.registry.service import STAGE_TAG, STAGES, RegistryService
    from loopml.registry.signature import Signature, infer_signature

__all__ = [
    "FLAVORS",
    "STAGES",
    "STAGE_TAG",
    "DatasetRef",
    "Flavor",
    "LoadedModel",
    "LoggedModelService",
    "Manifest",
    "ModelPackage",
    "PackageCheck",
    "PackageFile",
    "RegistryService",
    "Signature",
    "check_package",
    "flavor_for",
    "forbid_pickle_in_this_process",
    "import_mlflow",
    "infer_signature",
    "load_model",
    "register_flavor",
    "save_model",
    "verify_package",
]

__getattr__ = lazy_attributes(
    __name__,
    {
        "FLAVORS": "loopml.registry.flavors",
        "Flavor": "loopml.registry.flavors",
        "flavor_for": "loopml.registry.flavors",
        "register_flavor": "loopml.registry.flavors",
        "LoggedModelService": "loopml.registry.logged_models",
        "DatasetRef": "loopml.registry.manifest",
        "Manifest": "loopml.registry.manifest",
        "import_mlflow": "loopml.registry.mlflow_import",
        "LoadedModel": "loopml.registry.package",
        "ModelPackage": "loopml.registry.package",
        "load_model": "loopml.registry.package",
        "save_model": "loopml.registry.package",
        "verify_package": "loopml.registry.package",
        "PackageCheck": "loopml.registry.package_check",
        "PackageFile": "loopml.registry.package_check",
        "check_package": "loopml.registry.package_check",
        "forbid_pickle_in_this_process": "loopml.registry.pickle_guard",
        "RegistryService": "loopml.registry.service",
        "STAGES": "loopml.registry.service",
        "STAGE_TAG": "loopml.registry.service",
        "Signature": "loopml.registry.signature",
        "infer_signature": "loopml.registry.signature",
    },
)
