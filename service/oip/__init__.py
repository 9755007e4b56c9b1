"""/v2, the Open Inference Protocol (KServe v2) beside /v1: health, metadata, inference, model control.

Inference goes through `service.pipeline` like /v1 and renders the pipeline's typed results as tensors (`tensors`),
with refusals named in the tensors' terms (`pipeline.Fields`). Model control (`control`, /v2/repository) drives the
live repository (`service.models.repository`). Never imports the inference package.
"""
