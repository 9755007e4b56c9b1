"""The HTTP edge: what every request meets before and around its route.

The connection guard under uvicorn (`connection`), the body guard and request ids, metrics and access log
(`middleware`, with the body kinds routes declare in `bodies`), API keys and rate limits (`access`), and the fast
path that answers the tag routes' POSTs without FastAPI's per-request machinery (`fastpath`). May import the
routes it fronts (`service.api`), the pipeline's state, errors and observability; nothing below imports it.
"""
