"""`loopml emit NAME --kind docker|k8s --out DIR`: a Dockerfile or Kubernetes manifests for serving replicas."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopml.cli import output


def emit(
    name: Annotated[str, typer.Argument(help="The deployment the replicas serve.", show_default=False)],
    kind: Annotated[str, typer.Option("--kind", help="docker (a Dockerfile) or k8s (Kubernetes manifests).")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write into (created if missing).")],
    image: Annotated[
        str | None, typer.Option(help="Container image of the replicas (default: loopml:<version>).")
    ] = None,
    replicas: Annotated[int, typer.Option(min=1, help="Replicas, and the autoscaler's minimum.")] = 2,
    database_secret: Annotated[
        str, typer.Option(help="Kubernetes Secret holding the metadata store URL under the key `url`.")
    ] = "loopml-database",  # noqa: S107 - the name of a Kubernetes Secret, not a secret
    artifact_root: Annotated[str, typer.Option(help="Artifact store root URL the replicas read.")] = (
        "s3://loopml-artifacts"
    ),
) -> None:
    """Write a Dockerfile or Kubernetes manifests for serving replicas that read their spec from a shared store."""
    write_files(
        name, kind, out, image=image, replicas=replicas, database_secret=database_secret, artifact_root=artifact_root
    )


def write_files(
    name: str,
    kind: str,
    out: Path,
    *,
    image: str | None = None,
    replicas: int = 2,
    database_secret: str = "loopml-database",  # noqa: S107 - the name of a Kubernetes Secret, not a secret
    artifact_root: str = "s3://loopml-artifacts",
) -> None:
    """Write the files (`loopml emit`, `loopml deploy NAME --emit KIND DIR`) and say what was written."""
    from loopml.deploy import DEFAULT_IMAGE, write_emit

    written = write_emit(
        kind,
        name,
        out,
        image=image or DEFAULT_IMAGE,
        replicas=replicas,
        database_secret=database_secret,
        artifact_root=artifact_root,
    )
    console = output.stdout()
    for path in written:
        console.print(f"wrote {path}", markup=False)
    if kind == "k8s":
        console.print(
            f"[dim]create the Secret first: kubectl create secret generic {database_secret} "
            "--from-literal=url=postgresql+psycopg://...; then kubectl apply -f "
            f"{out}[/dim]"
        )
