"""Train the bike-demand model for CI: on a sample of 2011 (a pull request) or all of it (a merge), register
it as the next version of `bike-demand` with an alias, and write the 2012 holdout as the evaluation rows.

    python examples/ci/train.py --sample 0.3 --alias pr-42 --eval-data eval.parquet

Uses only the public SDK; the server comes from LOOPML_TRACKING_URI and LOOPML_TOKEN (embedded if unset).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

import loopml as lm

HOURS = Path(__file__).parents[1] / "data" / "bike_sharing" / "hour.csv"
FEATURES = ["season", "hr", "holiday", "workingday", "weathersit", "temp", "atemp", "hum", "windspeed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bike-demand")
    parser.add_argument("--sample", type=float, default=1.0, help="Share of 2011 to train on (0 < s <= 1).")
    parser.add_argument("--alias", required=True, help="Alias the new version gets (pr-42, challenger).")
    parser.add_argument("--eval-data", type=Path, required=True, help="Where to write the evaluation rows.")
    args = parser.parse_args()
    hours = pd.read_csv(HOURS, parse_dates=["dteday"])
    train = hours[hours["dteday"].dt.year == 2011].sample(frac=args.sample, random_state=0)
    holdout = hours[hours["dteday"].dt.year == 2012]
    holdout[[*FEATURES, "cnt"]].to_parquet(args.eval_data, index=False)
    model = HistGradientBoostingRegressor(max_iter=200, random_state=0).fit(train[FEATURES], train["cnt"])
    with lm.start_run(experiment=args.model, params={"sample": args.sample, "rows": len(train)}) as run:
        lm.log_dataset(train[[*FEATURES, "cnt"]], "bike-2011", role="training")
        version = lm.models.log(run.id, model, args.model, input_example=train[FEATURES][:5], register=True)
    lm.models.set_alias(args.model, args.alias, version.version, reason=f"trained on {len(train)} rows of 2011")
    print(f"{args.model} version {version.version} is @{args.alias} ({len(train)} training rows)")


if __name__ == "__main__":
    main()
