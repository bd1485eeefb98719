"""Real model packages for the serving tests: HistGradientBoosting on Bike Sharing, saved with `save_model`.

`v1` and `v2` differ in `max_iter`, so their predictions differ and a response shows which version answered.
"""

from __future__ import annotations

import pandas as pd
import pytest

from loopml.registry import save_model

from .support import DATA, FEATURES, Packages


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Packages:
    from sklearn.ensemble import HistGradientBoostingRegressor

    frame = pd.read_csv(DATA)
    train, test = frame.iloc[:3000], frame.iloc[10000:10200].reset_index(drop=True)
    root = tmp_path_factory.mktemp("packages")
    models = {}
    paths = {}
    for version, iterations in ((1, 10), (2, 25)):
        model = HistGradientBoostingRegressor(max_iter=iterations, random_state=0).fit(train[FEATURES], train["cnt"])
        save_model(model, root / f"v{version}", input_example=train[FEATURES].iloc[:5])
        models[version] = model
        paths[version] = root / f"v{version}"
    return Packages(paths[1], paths[2], test, models)
