"""Model registry: registered models, versions and aliases (`RegistryService`), and the model package
format: flavors, signatures, and the verified, self-describing package directory.

A service package: imports ports, the domain and other services' public modules only. Importing it must not
import pandas or any ML library (scikit-learn, xgboost, lightgbm, onnxruntime): flavors import theirs lazily.
"""

from loopml.registry.flavors import FLAVORS, Flavor, flavor_for, register_flavor
from loopml.registry.manifest import DatasetRef, Manifest
from loopml.registry.mlflow_import import import_mlflow
from loopml.registry.package import LoadedModel, ModelPackage, load_model, save_model, verify_package
from loopml.registry.pickle_guard import forbid_pickle_in_this_process
from loopml.registry.service import RegistryService
from loopml.registry.signature import Signature, infer_signature

__all__ = [
    "FLAVORS",
    "DatasetRef",
    "Flavor",
    "LoadedModel",
    "Manifest",
    "ModelPackage",
    "RegistryService",
    "Signature",
    "flavor_for",
    "forbid_pickle_in_this_process",
    "import_mlflow",
    "infer_signature",
    "load_model",
    "register_flavor",
    "save_model",
    "verify_package",
]
