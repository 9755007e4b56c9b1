"""Hooks for the fuzzing run in .ci/run (`SCHEMATHESIS_HOOKS=tests.schemathesis_hooks st run ...`).

JSON Schema can say that `conllu` is a string, not that it is a CoNLL-U
document (ten tab-separated columns, word IDs counting 1, 2, 3 ...), so a
generated string would rightly be a 422 `invalid_conllu` (tests/service/api/test_formats.py
checks those refusals line by line). Each generated `conllu` string is made
into a document of the generated text's words instead, so the fuzzing reaches
the tagging of CoNLL-U input rather than its parser's first refusal.
"""

from __future__ import annotations

from typing import Any

import schemathesis

COLUMNS_AFTER_FORM = "\t_" * 8


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("conllu"), str):
        words = body["conllu"].split()[:512] or ["word"]
        body["conllu"] = "".join(f"{i}\t{w[:1000]}{COLUMNS_AFTER_FORM}\n" for i, w in enumerate(words, start=1))
    return body
