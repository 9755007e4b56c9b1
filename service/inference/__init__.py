"""Inference: admission, the queue and batch scheduling, both batchers, the inference process and its messages.

`batcher.ModelBatcher` is the one face the rest of the service sees; `process_batcher.ProcessBatcher` (the
default: each model in an inference process of its own, `process`) and `in_process.InProcessBatcher` are its two
siblings, sharing `queue.BatchQueue`, `scheduling` and `admission`. Messages between the processes are typed
(`messages`). Knows nothing of HTTP: imports only the settings, observability and the core. Drift statistics will be
counted here, in the inference process, where the scores are, and carried back in `messages.BatchDone`.
"""
