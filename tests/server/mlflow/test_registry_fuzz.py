"""Hostile and malformed MLflow registry requests: every answer is a 4xx in MLflow's error shape, never a 5xx
(the MLflow client retries a 5xx for minutes). Property-based: Hypothesis draws the bodies."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..support import Api

MLFLOW = "/api/2.0/mlflow"
ROUTES = [
    ("POST", "/registered-models/create"),
    ("GET", "/registered-models/get"),
    ("PATCH", "/registered-models/update"),
    ("DELETE", "/registered-models/delete"),
    ("GET", "/registered-models/search"),
    ("POST", "/registered-models/set-tag"),
    ("DELETE", "/registered-models/delete-tag"),
    ("POST", "/registered-models/alias"),
    ("DELETE", "/registered-models/alias"),
    ("GET", "/registered-models/alias"),
    ("POST", "/registered-models/get-latest-versions"),
    ("POST", "/model-versions/create"),
    ("GET", "/model-versions/get"),
    ("PATCH", "/model-versions/update"),
    ("DELETE", "/model-versions/delete"),
    ("GET", "/model-versions/search"),
    ("POST", "/model-versions/set-tag"),
    ("DELETE", "/model-versions/delete-tag"),
    ("POST", "/model-versions/transition-stage"),
    ("GET", "/model-versions/get-download-uri"),
    ("POST", "/logged-models"),
    ("POST", "/logged-models/search"),
    ("GET", "/logged-models/m-0123456789abcdef0123456789abcdef"),
    ("PATCH", "/logged-models/m-0123456789abcdef0123456789abcdef"),
    ("PATCH", "/logged-models/m-0123456789abcdef0123456789abcdef/tags"),
    ("POST", "/logged-models/m-0123456789abcdef0123456789abcdef/params"),
]
FIELDS = ["name", "version", "alias", "key", "value", "source", "run_id", "model_id", "stage", "filter",
          "max_results", "page_token", "order_by", "tags", "params", "experiment_id", "source_run_id", "status",
          "description", "experiment_ids", "stages", "archive_existing_versions"]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["fraud", "../..", "1", "0", "-1", "champion", "models:/m-x", "runs:/" + "a" * 32 + "/m",
                     "name = 'x'", "tags.`a` LIKE '%'", "' OR 1=1 --", "\x00", "Production", "LOGGED_MODEL_READY"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
bodies = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6)
query_values = st.one_of(
    st.text(max_size=30), st.sampled_from(["1", "champion", "name = 'a'", "%", "99999999999999999999"])
)


def _seed(api: Api) -> None:
    from .test_registry import _call, _logged_model

    logged = _logged_model(api)
    _call(api, "POST", "/registered-models/create", {"name": "fraud"})
    _call(api, "POST", "/model-versions/create", {"name": "fraud", "source": f"models:/{logged['model_id']}"})
    _call(api, "POST", "/registered-models/alias", {"name": "fraud", "alias": "champion", "version": "1"})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(ROUTES), body=bodies, query=st.dictionaries(st.sampled_from(FIELDS), query_values, max_size=4)
)
def test_no_request_makes_the_registry_fail_with_a_5xx(
    api: Api, route: tuple[str, str], body: dict[str, Any], query: dict[str, str]
) -> None:
    if not getattr(
        api.app.state, "fuzz_seeded", False
    ):  # a model, a version and an alias, so requests reach more than "not found"
        _seed(api)
        api.app.state.fuzz_seeded = True
    method, path = route
    if method == "GET":
        answer = api.client.get(f"{MLFLOW}{path}", params=query, headers=api.headers())
    else:
        content = json.dumps(body).encode()  # NaN and Infinity as Python writes them, as MLflow's client may
        headers = {**api.headers(), "Content-Type": "application/json"}
        answer = api.client.request(method, f"{MLFLOW}{path}", content=content, headers=headers)
    assert answer.status_code < 500, (route, body, query, answer.text)
    if answer.status_code >= 400:
        error = answer.json()
        assert error["error_code"] and error["message"], error
