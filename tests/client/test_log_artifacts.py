"""`log_artifact` / `log_artifacts` on both backends: names, encodings and symlinks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import loopml
from loopml.client import fluent
from loopml.errors import InvalidInput, InvalidPath


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """`tmp_path/tree` with two files, and a secret next to it (outside the tree)."""
    root = tmp_path / "tree"
    (root / "plots").mkdir(parents=True)
    (root / "model.txt").write_bytes(b"model")
    (root / "plots" / "fi.png").write_bytes(b"png")
    (tmp_path / "secret.txt").write_bytes(b"do not upload")
    return root


def test_a_symlink_out_of_the_directory_is_refused_before_any_upload(
    client: loopml.Client, tree: Path, tmp_path: Path
) -> None:
    run = client.runs.create("links")
    link = tree / "plots" / "innocent.txt"
    link.symlink_to(tmp_path / "secret.txt")

    with pytest.raises(InvalidInput, match="symlink") as refused:
        client.runs.log_artifacts(run.id, tree)

    assert str(link) in refused.value.message
    assert client.runs.artifacts(run.id) == []


def test_a_symlinked_directory_out_of_the_tree_is_refused(client: loopml.Client, tree: Path, tmp_path: Path) -> None:
    run = client.runs.create("links")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "id_rsa").write_bytes(b"key")
    (tree / "ssh").symlink_to(tmp_path / "home", target_is_directory=True)
    (tree / "dangling").symlink_to(tmp_path / "missing")

    with pytest.raises(InvalidInput, match="outside"):
        client.runs.log_artifacts(run.id, tree)
    (tree / "ssh").unlink()
    with pytest.raises(InvalidInput, match="missing"):
        client.runs.log_artifacts(run.id, tree)

    assert client.runs.artifacts(run.id) == []


def test_links_inside_the_directory_are_stored_as_their_content(client: loopml.Client, tree: Path) -> None:
    run = client.runs.create("links")
    (tree / "latest.txt").symlink_to(tree / "model.txt")
    (tree / "charts").symlink_to(tree / "plots", target_is_directory=True)

    logged = client.runs.log_artifacts(run.id, tree, "out")

    assert [(a.path, a.size) for a in logged] == [("out/latest.txt", 5), ("out/model.txt", 5), ("out/plots/fi.png", 3)]
    assert logged[0].digest == logged[1].digest


def test_a_file_name_that_is_not_utf8_is_refused(client: loopml.Client, tree: Path) -> None:
    run = client.runs.create("encodings")
    latin1 = os.path.join(os.fsencode(tree), b"caf\xe9.csv")  # written by a Latin-1 system
    with open(latin1, "wb") as f:
        f.write(b"a,b\n")

    with pytest.raises(InvalidPath, match="UTF-8"):
        client.runs.log_artifacts(run.id, tree)
    with pytest.raises(InvalidPath, match="UTF-8"):
        client.runs.log_artifact(run.id, os.fsdecode(latin1))

    assert client.runs.artifacts(run.id) == []


def test_names_are_nfc_normalised_and_collisions_refused(client: loopml.Client, tree: Path, tmp_path: Path) -> None:
    run = client.runs.create("unicode")
    record = client.runs.log_artifact(run.id, tree / "model.txt", "cafe\u0301.txt")  # decomposed
    assert record.path == "caf\u00e9.txt"
    fetched = client.runs.download_artifact(run.id, "caf\u00e9.txt", tmp_path / "out")
    assert fetched.read_bytes() == b"model"

    (tree / "cafe\u0301.csv").write_bytes(b"decomposed")
    (tree / "caf\u00e9.csv").write_bytes(b"composed")
    with pytest.raises(InvalidInput, match="would both be stored as 'caf\u00e9\\.csv'"):
        client.runs.log_artifacts(run.id, tree)
    assert [a.path for a in client.runs.artifacts(run.id)] == ["caf\u00e9.txt"]


def test_bidirectional_controls_are_refused(client: loopml.Client, tree: Path) -> None:
    run = client.runs.create("unicode")
    with pytest.raises(InvalidPath, match="bidirectional"):
        client.runs.log_artifact(run.id, tree / "model.txt", "invoice\u202egpj.exe")
    assert client.runs.artifacts(run.id) == []


def test_an_embedded_client_removes_uploads_cut_off_by_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOOPML_TRACKING_URI", "LOOPML_DATABASE_URL", "LOOPML_ARTIFACT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    tmp = tmp_path / "home" / "artifacts" / "tmp"
    tmp.mkdir(parents=True)
    (tmp / "crashed").write_bytes(b"half an upload")
    os.utime(tmp / "crashed", (0, 0))  # written long ago
    (tmp / "in-flight").write_bytes(b"being written by another process")

    with loopml.Client(home=tmp_path / "home"):
        assert [p.name for p in tmp.iterdir()] == ["in-flight"]


def test_module_level_log_artifacts_uploads_the_tree_of_the_active_run(
    client: loopml.Client, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fluent, "_default", client)
    with loopml.start_run(experiment="fluent-artifacts", capture_environment=False) as run:
        logged = loopml.log_artifacts(tree, "out")
        (tree / "leak.txt").symlink_to(tmp_path / "secret.txt")
        with pytest.raises(InvalidInput, match="symlink"):
            loopml.log_artifacts(tree)

    assert sorted(a.path for a in logged) == ["out/model.txt", "out/plots/fi.png"]
    assert sorted(a.path for a in client.runs.artifacts(run.id)) == ["out/model.txt", "out/plots/fi.png"]
