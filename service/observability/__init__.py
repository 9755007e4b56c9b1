"""Observability: the Prometheus metrics of one service process (`metrics`) and its log (`logs`: plain or JSON
lines, the access log). Imports nothing of the service but the settings, so every other room may use it. Drift
statistics (live counters against the export's reference profile) will be exported from here.
"""
