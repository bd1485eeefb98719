-- MLflow's scoring protocol: POST /invocations with one dataframe_records row (the first Bike Sharing row).
-- The same script drives `mlflow models serve` and loopml's drop-in /invocations route.
wrk.method = "POST"
wrk.path = "/invocations"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"dataframe_records":[{"season":1,"mnth":1,"hr":0,"holiday":0,"weekday":6,"workingday":0,"weathersit":1,"temp":0.24,"atemp":0.2879,"hum":0.81,"windspeed":0.0}]}'

dofile((os.getenv("WRK_LUA_DIR") or "benchmarks/wrk") .. "/common.lua")
