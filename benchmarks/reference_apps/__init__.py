"""The reference ASGI apps of benchmarks/serving_curve.py: the ceilings loopml's replica is measured against."""
