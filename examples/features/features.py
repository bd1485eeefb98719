"""Feature definitions of the Bike Sharing example: the weather of Washington, D.C., hour by hour.

The readings are published an hour after the hour they describe (`created_at`); a reading is valid for two
hours (`ttl`), so an hour whose reading is missing gets nulls rather than a stale value.
"""

from loopml.features import Entity, FeatureService, FeatureView, Field, FileSource, OnDemandFeatureView

city = Entity("city", join_keys=["city"], description="A bike-sharing system's city")

weather_hourly = FeatureView(
    "weather_hourly",
    entities=[city],
    ttl="2h",
    source=FileSource("weather_hourly.parquet", timestamp="ts", created="created_at"),
    schema=[
        Field("temp", "float"),
        Field("atemp", "float"),
        Field("hum", "float"),
        Field("windspeed", "float"),
        Field("weathersit", "int"),
    ],
    description="Normalised temperature, felt temperature, humidity, wind speed and weather situation (1-4)",
)


def comfort(frame):
    # Felt temperature high and humidity low: the hours people ride for pleasure.
    return frame.assign(comfort=frame["atemp"] * (1.0 - frame["hum"]))


weather_comfort = OnDemandFeatureView(
    "weather_comfort",
    inputs=["weather_hourly:atemp", "weather_hourly:hum"],
    function=comfort,
    schema=[Field("comfort", "float")],
)

bike_demand = FeatureService(
    "bike_demand",
    features=[
        "weather_hourly:temp",
        "weather_hourly:hum",
        "weather_hourly:windspeed",
        "weather_hourly:weathersit",
        "weather_comfort:comfort",
    ],
)
