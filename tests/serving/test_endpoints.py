"""The replica's routing table: every endpoint is found by method and path, with its parameters; the rest are
404s and 405s in the error shape of the path's protocol."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopml.serving.routing import ENDPOINTS, RECENT_PATHS, Endpoint, Router

router = Router()


@pytest.mark.parametrize(
    ("method", "path", "name", "params"),
    [
        ("POST", "/v1/deployments/bike/predict", "predict", {"deployment": "bike"}),
        ("POST", "/v2/models/bike/infer", "predict", {"deployment": "bike"}),
        ("POST", "/v2/models/bike/versions/2/infer", "predict", {"deployment": "bike", "version": "2"}),
        ("POST", "/invocations", "predict", {}),
        ("GET", "/ping", "health", {}),
        ("HEAD", "/health", "health", {}),
        ("GET", "/metrics", "metrics", {}),
        ("GET", "/v2/models/bike", "oip_model", {"deployment": "bike"}),
        ("GET", "/v2/models/bike/versions/x", "oip_model", {"deployment": "bike", "version": "x"}),
        ("HEAD", "/v2/models/bike/ready", "oip_model_ready", {"deployment": "bike"}),
        ("GET", "/v2/health/ready", "oip_ready", {}),
    ],
)
def test_each_endpoint_is_found_with_its_parameters(method: str, path: str, name: str, params: dict[str, str]) -> None:
    match = router.match(method, path)
    assert match.endpoint is not None
    assert (match.endpoint.name, match.params, match.status) == (name, params, 200)


@pytest.mark.parametrize(
    ("method", "path", "allowed", "protocol"),
    [
        ("GET", "/v1/deployments/bike/predict", ("POST",), "native"),
        ("GET", "/v2/models/bike/infer", ("POST",), "oip"),
        ("PUT", "/invocations", ("POST",), "invocations"),
        ("POST", "/ping", ("GET",), "native"),
        ("DELETE", "/v2/models/bike", ("GET",), "oip"),
    ],
)
def test_a_known_path_with_another_method_is_a_405(
    method: str, path: str, allowed: tuple[str, ...], protocol: str
) -> None:
    match = router.match(method, path)
    assert (match.endpoint, match.status, match.allowed, match.protocol) == (None, 405, allowed, protocol)


@pytest.mark.parametrize(
    ("path", "protocol"),
    [
        ("/v1/deployments/a/b/predict", "native"),  # a parameter is one path segment
        ("/v1/deployments//predict", "native"),  # and never empty
        ("/v2/models/bike/explain", "oip"),
        ("/v2/models", "oip"),
        ("/nope", "native"),
        ("/invocations/", "native"),
    ],
)
def test_an_unknown_path_is_a_404_in_its_protocols_shape(path: str, protocol: str) -> None:
    match = router.match("GET", path)
    assert (match.endpoint, match.status, match.protocol) == (None, 404, protocol)


def test_an_endpoint_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        Router((Endpoint("GET", "/ping", "health"), Endpoint("GET", "/ping", "other")))
    with pytest.raises(ValueError, match="starts with '/'"):
        Router((Endpoint("GET", "v2/models/{deployment}", "oip_model"),))


def test_every_endpoint_of_the_table_is_reachable() -> None:
    for endpoint in ENDPOINTS:
        path = endpoint.path.replace("{deployment}", "d").replace("{version}", "1")
        match = router.match(endpoint.method, path)
        assert match.endpoint == endpoint


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_name_without_a_slash_is_one_deployment(name: str) -> None:
    match = router.match("POST", f"/v1/deployments/{name}/predict")
    if name and "/" not in name:
        assert match.params == {"deployment": name}
    else:
        assert match.endpoint is None


def test_the_kept_matches_stay_right_and_bounded_under_endless_new_names() -> None:
    mine = Router()
    for i in range(3 * RECENT_PATHS):
        match = mine.match("POST", f"/v2/models/d{i}/versions/{i}/infer")
        assert match.params == {"deployment": f"d{i}", "version": str(i)}
        assert mine.match("GET", f"/v2/models/d{i}/versions/{i}/infer").status == 405  # per method
    assert len(mine._recent) <= RECENT_PATHS
    again = mine.match("POST", "/v1/deployments/bike/predict")
    assert mine.match("POST", "/v1/deployments/bike/predict") is again  # kept
    assert mine.match("POST", "/v1/deployments/bike2/predict").params == {"deployment": "bike2"}
