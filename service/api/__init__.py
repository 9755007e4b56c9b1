"""/v1: the JSON API people call, with its schemas, answer formats, OpenAPI document, /docs and the web page.

Routes are short: they hand a request to `service.pipeline` and render its typed results (`answers`: json, CoNLL-U,
displaCy). Imports the pipeline, the state, served models' descriptions and errors; never the inference package.
"""
