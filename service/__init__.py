"""The serving side (never imports torch): ONNX Runtime sessions behind a FastAPI app, in rooms by concern.

    edge/            the HTTP edge: connection guard, body guard and request middleware, the fast path, access control
    api/             /v1: routes, request and answer schemas, answer formats, OpenAPI, /docs, the web page
    oip/             /v2, the Open Inference Protocol: routes, schemas, tensors, model control (/v2/repository)
    pipeline.py      the request path, once: prepare -> submit -> results (typed), for /v1, /v2 and the fast path
    results.py       the typed results (`SentenceResult`) the pipeline gives and /v1 and /v2 render
    limits.py        the checks `prepare` applies, each refusal naming its field and its setting
    state.py         the app's state and its public lookups (served model, readiness)
    inference/       admission, the queue and scheduling, both batchers, the inference process and its messages
    models/          export folders loaded and verified, the live repository (polling, loads, swaps)
    observability/   metrics and logs
    corrections/     the review queue and corrections store (SQLite | PostgreSQL)
    errors.py, settings.py, app.py, server.py: refusals, the one settings object, the app, `tagger serve`

Arrows point one way (tests/test_layers.py checks them): edge -> api -> pipeline -> {inference, models};
oip -> pipeline; inference never imports HTTP, the routes or the models; observability imports nothing of the
service but the settings. docs/architecture.md walks one request through them.
"""
