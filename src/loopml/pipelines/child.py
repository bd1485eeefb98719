"""The process of one submitted pipeline run: `python -m loopml.pipelines.child FD`, its spec as JSON on stdin.

It loads the pipeline, opens the run, writes `{"run": ...}` (or `{"error": {"code", "message"}}` if it could
not start) to file descriptor FD and closes it, then heartbeats while it drives the run to its end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from loopml.domain import PipelineRunRecord, Principal, Role
from loopml.domain.pipelines import pipeline_run_to_json
from loopml.errors import LoopmlError


def _git_tags(ref: str) -> dict[str, str]:
    """The git commit (and dirty flag) of the pipeline file's checkout, for lineage's "which code"."""
    where = ref.rpartition(":")[0]
    directory = Path(where).parent if where.endswith(".py") else Path.cwd()

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    tags = {"loopml.source.entry_point": where}
    commit = git("rev-parse", "HEAD")
    if commit:
        tags["loopml.source.git_commit"] = commit
        tags["loopml.source.git_dirty"] = "true" if git("status", "--porcelain", "--untracked-files=no") else "false"
    return tags


def main(fd: int, spec: dict[str, Any]) -> int:
    answer = os.fdopen(fd, "w")
    told = False

    def tell(message: dict[str, Any]) -> None:
        nonlocal told
        if not told:
            told = True
            answer.write(json.dumps(message))
            answer.close()

    try:
        from loopml.artifacts import open_artifact_store
        from loopml.pipelines.loading import load_pipeline
        from loopml.pipelines.runner import run_pipeline
        from loopml.pipelines.service import PipelineService, holder_name
        from loopml.store import MetadataStore

        who = spec["principal"]
        principal = Principal(actor=who["actor"], role=Role(who["role"]), project=who["project"])
        store = MetadataStore.open(spec["database_url"], upgrade=False)
        artifacts = open_artifact_store(spec["artifact_root"], spec["s3_endpoint_url"])
        service = PipelineService(store, artifacts, spec["default_project"])
        pipeline = load_pipeline(spec["ref"])
        stop = threading.Event()

        def beat(run_id: str) -> None:
            while not stop.wait(spec["heartbeat_seconds"]):
                try:
                    service.heartbeat(principal, run_id)
                except Exception as error:  # the store is away: the next beat tries again
                    print(f"loopml: heartbeat of run {run_id} failed: {error}", file=sys.stderr)

        def on_start(record: PipelineRunRecord) -> None:
            service.hold(principal, record.run_id, holder_name())
            threading.Thread(target=beat, args=(record.run_id,), daemon=True, name="loopml-heartbeat").start()
            tell({"run": pipeline_run_to_json(record)})

        trigger: dict[str, Any] = {"kind": "submit", "by": principal.actor}
        if spec["retry_of"] is not None:
            trigger = {"kind": "retry", "run_id": spec["retry_of"], "by": principal.actor}
        try:
            run_pipeline(
                service,
                principal,
                pipeline,
                spec["params"],
                spec["executor"],
                cache=spec["cache"],
                trigger=trigger,
                retry_of=spec["retry_of"],
                project=spec["project"],
                tags=_git_tags(spec["ref"]),
                executor_options=spec["executor_options"],
                on_start=on_start,
            )
        finally:
            stop.set()
        return 0
    except LoopmlError as error:
        if told:
            raise
        tell({"error": {"code": error.code, "message": error.message}})
        return 2
    except Exception as error:
        if told:
            raise
        tell(
            {
                "error": {
                    "code": "invalid_pipeline",
                    "message": f"the pipeline could not start: {type(error).__name__}: {error}",
                }
            }
        )
        return 2


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), json.loads(sys.stdin.buffer.read())))
