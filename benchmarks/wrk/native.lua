-- loopml native route: POST /v1/deployments/bike/predict with one record (the first Bike Sharing row).
-- Used by benchmarks/serving.py: wrk -t1 -c32 -d15s --latency -s native.lua http://127.0.0.1:PORT
-- The path's deployment name must match `loopml serve --name bike`.
wrk.method = "POST"
wrk.path = "/v1/deployments/bike/predict"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"records":[{"season":1,"mnth":1,"hr":0,"holiday":0,"weekday":6,"workingday":0,"weathersit":1,"temp":0.24,"atemp":0.2879,"hum":0.81,"windspeed":0.0}]}'

dofile((os.getenv("WRK_LUA_DIR") or "benchmarks/wrk") .. "/common.lua")
