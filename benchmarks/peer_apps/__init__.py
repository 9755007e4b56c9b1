"""The peers benchmark (`benchmarks/peers.py`): its helpers, and the apps it serves the model with.

Two kinds of module live here. `frameworks`, `servers` and `report` run in the
main venv, imported by `benchmarks/peers.py` as `peer_apps.*` (this package wins
over the script of the same name). `model_path`, `ray_app`, `bento_service`
and `lit_app` run in each framework's own venv, as top-level modules (this
folder is on their PYTHONPATH): they import `model_path`, never `peers`.
"""
