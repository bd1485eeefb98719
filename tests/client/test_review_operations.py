"""The operations the web UI's review pages need, on both backends: pausing and resuming a canary rollout, a
model's alias history with reasons, and the audit log filtered by actor, action and entity."""

from __future__ import annotations

from pathlib import Path

import pytest

import loopml
from loopml.errors import InvalidInput, ModelNotFound


def _two_versions(client: loopml.Client, tmp_path: Path, model: str) -> None:
    client.models.create(model)
    for rmse in (41.0, 40.0):
        manifest = tmp_path / f"manifest-{model}-{rmse}.json"
        manifest.write_text(f'{{"flavor": "sklearn", "rmse": {rmse}}}')
        run = client.runs.create("review")
        record = client.runs.log_artifact(run.id, manifest, "model/loopml-model.json")
        client.runs.end(run.id)
        client.models.create_version(model, run.id, "model", record.digest, "sklearn")


@pytest.mark.operations("pause_deployment", "resume_deployment")
def test_a_paused_canary_keeps_its_split_until_resumed(client: loopml.Client, tmp_path: Path) -> None:
    _two_versions(client, tmp_path, "bike")
    client.deployments.deploy("bike-demand", "bike/1")
    with pytest.raises(InvalidInput, match="no rollout in progress to pause"):
        client.deployments.pause("bike-demand")
    canary = client.deployments.deploy("bike-demand", "bike/2", strategy="canary", canary_steps=(10, 50))
    paused = client.deployments.pause("bike-demand", reason="latency spike under investigation")
    assert paused.state == "paused" and paused.versions == canary.versions
    assert client.deployments.history("bike-demand", limit=1)[0].reason == "latency spike under investigation"
    with pytest.raises(InvalidInput, match="no rollout in progress"):
        client.deployments.pause("bike-demand")
    resumed = client.deployments.resume("bike-demand", reason="fixed")
    assert resumed.state == "progressing" and resumed.versions == canary.versions
    assert resumed.updated_at >= paused.updated_at  # the step's analysis window starts again
    with pytest.raises(InvalidInput, match="is not paused"):
        client.deployments.resume("bike-demand")
    client.deployments.pause("bike-demand")
    assert client.deployments.rollback("bike-demand").state == "rolled_back"  # a paused canary can be undone


@pytest.mark.operations("model_alias_history")
def test_alias_history_says_who_moved_which_alias_and_why(client: loopml.Client, tmp_path: Path) -> None:
    _two_versions(client, tmp_path, "bike")
    client.models.set_alias("bike", "champion", 1, reason="first model")
    client.models.set_alias("bike", "champion", 2, reason="beats v1 on rmse")
    client.models.set_alias("bike", "challenger", 1)
    client.models.delete_alias("bike", "challenger", reason="not needed")
    history = client.models.alias_history("bike")
    assert [(c.alias, c.previous, c.version, c.reason) for c in history] == [
        ("challenger", 1, None, "not needed"),
        ("challenger", None, 1, None),
        ("champion", 1, 2, "beats v1 on rmse"),
        ("champion", None, 1, "first model"),
    ]
    assert all(c.actor for c in history) and history[0].seq > history[-1].seq
    assert len(client.models.alias_history("bike", limit=1)) == 1
    with pytest.raises(ModelNotFound):
        client.models.alias_history("nope")
    with pytest.raises(InvalidInput):
        client.models.alias_history("bike", limit=0)


@pytest.mark.operations("audit_events")
def test_audit_events_filter_by_actor_action_and_entity(client: loopml.Client, tmp_path: Path) -> None:
    _two_versions(client, tmp_path, "bike")
    client.models.set_alias("bike", "champion", 1, reason="first")
    actor = client.audit.events(action="model.set_alias")[0].actor
    everything = client.audit.events()
    models = client.audit.events(action="model.")
    assert {e.action for e in models} == {"model.create", "model.set_alias"}
    assert [e.seq for e in client.audit.events(entity_type="model", entity_id="bike")] == [e.seq for e in models]
    assert [e.seq for e in client.audit.events(actor=actor)] == [e.seq for e in everything if e.actor == actor]
    assert client.audit.events(actor="someone-else") == []
    assert client.audit.events(action="model_") == []  # a prefix must end in a dot: this is an exact action
    assert client.audit.events(action="%.") == client.audit.events(action="_odel.") == []  # wildcards are text
    newest = client.audit.events(newest_first=True, limit=2)
    assert [e.seq for e in newest] == [everything[-1].seq, everything[-2].seq]
    older = client.audit.events(newest_first=True, before_seq=newest[-1].seq, limit=1)
    assert [e.seq for e in older] == [everything[-3].seq]
    with pytest.raises(InvalidInput):
        client.audit.events(actor="")
