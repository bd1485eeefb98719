"""`client.retrain` behaves the same on the embedded backend and over HTTP."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

import loopml
from loopml.artifacts import open_artifact_store
from loopml.domain import Principal, Role
from loopml.errors import InvalidInput, RetrainPolicyNotFound
from loopml.registry import RegistryService
from loopml.store import MetadataStore
from loopml.tracking import TrackingService

ADMIN = Principal("admin", Role.ADMIN, None)
MANIFEST = b'{"flavor": "sklearn", "files": {}}'
PIPELINE = "@lm.pipeline\ndef retrain(trigger: dict | None = None):\n    return None\n"


def seed(tmp_path: Path) -> None:
    """A version `churn/1`, written straight to the client's stores."""
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'loopml.db'}")
    blobs = open_artifact_store((tmp_path / "artifacts").as_uri())
    try:
        tracking, registry = TrackingService(store, blobs), RegistryService(store)
        registry.create_model(ADMIN, "churn")
        run = tracking.create_run(ADMIN, tracking.get_or_create_experiment(ADMIN, "e").id)
        tracking.log_artifact(ADMIN, run.id, "model/loopml-model.json", [MANIFEST])
        registry.create_version(ADMIN, "churn", run.id, "model", hashlib.sha256(MANIFEST).hexdigest(), "sklearn")
    finally:
        store.close()


def waiting_loop(tmp_path: Path, policy: str, at: int) -> str:
    """A loop of `policy` waiting for approval, as the controller leaves it after a passed gate."""
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'loopml.db'}")
    try:
        with store.write("test") as unit:
            loop = unit.retrain.claim(
                unit.retrain.policy(policy), uuid.uuid4().hex, f"k{uuid.uuid4().hex}", "drift", {}, at
            )
            assert loop is not None
            unit.retrain.transition(loop, "awaiting_approval", {})
            return loop.id
    finally:
        store.close()


@pytest.mark.operations(
    "create_retrain_policy",
    "list_retrain_policies",
    "get_retrain_policy",
    "delete_retrain_policy",
    "list_retrain_loops",
    "get_retrain_loop",
    "approve_retrain_loop",
    "reject_retrain_loop",
)
def test_policies_and_loops(client: loopml.Client, tmp_path: Path) -> None:
    seed(tmp_path)
    client.deployments.deploy("churn-live", "churn/1")
    client.monitors.create("churn-mon", "churn-live", "1h")
    file = tmp_path / "train.py"
    file.write_text("import loopml as lm\n\n\n" + PIPELINE)
    gate = tmp_path / "gate.yaml"
    gate.write_text("metrics:\n  - rmse <= champion * 1.02\n")
    policy = client.retrain.create(
        "churn", monitor="churn-mon", pipeline=f"{file}:retrain", on=["drift:3", "metric-drop:10%"],
        gate=gate, label="churned", cooldown="12h", max_loops=3, period="1d", approval="manual",
    )  # fmt: skip
    assert [t.label for t in policy.triggers] == ["drift:3", "metric-drop:10%"]
    assert (policy.cooldown_seconds, policy.max_loops, policy.period_seconds) == (43_200, 3, 86_400)
    assert policy.gate == gate.read_text() and policy.model == "churn" and policy.rollout == "canary"
    assert client.retrain.get("churn") == policy
    assert [p.name for p in client.retrain.list()] == ["churn"]
    with pytest.raises(InvalidInput, match="monitor 'nope' does not exist"):
        client.retrain.create("x", monitor="nope", pipeline=f"{file}:retrain", on=["drift:1"], model="churn")
    with pytest.raises(InvalidInput, match="defines no 'missing'"):
        client.retrain.create("x", monitor="churn-mon", pipeline=f"{file}:missing", on=["drift:1"], model="churn")
    with pytest.raises(InvalidInput, match="line 2"):
        client.retrain.create(
            "x", monitor="churn-mon", pipeline=f"{file}:retrain", on=["drift:1"], model="churn",
            gate="metrics:\n  - rmse is small\n", label="churned",
        )  # fmt: skip
    first = waiting_loop(tmp_path, "churn", 1)
    assert client.retrain.get_loop(first).state == "awaiting_approval"
    approved = client.retrain.approve(first, "looks right")
    assert approved.state == "rolling_out" and approved.events[-1].detail["reason"] == "looks right"
    with pytest.raises(InvalidInput, match="not awaiting_approval"):
        client.retrain.reject(first)
    # one active loop per policy: end the first before the next can exist
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'loopml.db'}")
    try:
        with store.write("test") as unit:
            unit.retrain.transition(unit.retrain.loop(first), "failed", {}, error="test")
    finally:
        store.close()
    second = waiting_loop(tmp_path, "churn", 2)
    assert client.retrain.reject(second).state == "rejected"
    assert [loop.id for loop in client.retrain.runs("churn")] == [second, first]
    assert client.retrain.delete("churn").name == "churn"
    with pytest.raises(RetrainPolicyNotFound):
        client.retrain.get("churn")
