"""Request and response bodies of the HTTP API.

Structure is checked here (types, unknown fields, empty lists); the limits
that operators configure are checked by `service.pipeline`, which knows the
settings. Strict types: a number where a token belongs is an error, not "3".
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator, model_validator

Format = Literal["json", "conllu", "displacy"]


# A token or text must hold something other than whitespace. Python's idea of whitespace (str.strip, what
# the server applies) adds \x1c-\x1f and \x85 to ECMA-262's \s (what JSON Schema's patterns use).
NOT_BLANK = r"[^\s\x1c-\x1f\x85]"


class TagRequest(BaseModel):
    """One input: pre-tokenized `sentences`, raw `texts`, or a `conllu` document."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"sentences": [["The", "cat", "sat", "."]], "scores": True},
                {"texts": ["I don't like green eggs."], "top_k": 2},
                {"texts": ["Tim Cook visited Berlin."], "format": "displacy"},
                {"conllu": "# text = Hi there\n1\tHi\t_\t_\t_\t_\t_\t_\t_\t_\n2\tthere\t_\t_\t_\t_\t_\t_\t_\t_\n\n"},
            ]
        },
    )

    sentences: Annotated[list[list[StrictStr]], Field(min_length=1)] | None = Field(
        None, description="pre-tokenized sentences, one list of tokens each"
    )
    texts: Annotated[list[StrictStr], Field(min_length=1)] | None = Field(
        None, description="raw texts, tokenized by the built-in UD/PTB-style tokenizer"
    )
    # no min_length: a constrained str refuses a lone surrogate before tagging can name its line
    conllu: StrictStr | None = Field(
        None,
        description="a CoNLL-U document: its FORM column is tagged, and (format conllu, the default for this "
        "input) it comes back with only the tag column filled (UPOS, or NER= in MISC for span models)",
    )
    format: Format | None = Field(
        None,
        description="the answer: json (results per input; the default for sentences and texts), conllu (one "
        "CoNLL-U document; the default for conllu input) or displacy (what spaCy's displacy.render(manual=True) "
        "takes)",
    )
    scores: StrictBool = Field(False, description="add the probability of each chosen tag (format json)")
    top_k: int = Field(0, ge=0, description="add the k most probable tags per token (format json)")

    @field_validator("top_k", mode="before")
    @classmethod
    def _whole_number(cls, value: Any) -> Any:
        """JSON Schema's integers include 3.0; strings and booleans are not numbers here."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("top_k must be an integer")
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"top_k must be a whole number, got {value}")
        return int(value)

    @model_validator(mode="after")
    def _one_input(self) -> TagRequest:
        if sum(x is not None for x in (self.sentences, self.texts, self.conllu)) != 1:
            raise ValueError(
                "give exactly one of 'sentences' (token lists), 'texts' (strings) or 'conllu' (a CoNLL-U document)"
            )
        return self

    @property
    def answer_format(self) -> Format:
        """The format asked for, or the input's own: CoNLL-U in, CoNLL-U out."""
        return self.format or ("conllu" if self.conllu is not None else "json")


class TagScore(BaseModel):
    tag: str
    probability: float


class EntitySpan(BaseModel):
    """An entity span in a response: its label, tokens, characters (text input) and probability."""

    label: str
    start: int = Field(description="first token index")
    end: int = Field(description="token index after the last token")
    text: str
    start_char: int | None = None
    end_char: int | None = None
    score: float


class TagResult(BaseModel):
    tokens: list[str]
    tags: list[str]
    scores: list[float] | None = None
    top_k: list[list[TagScore]] | None = None
    offsets: list[tuple[int, int]] | None = Field(None, description="[start, end) character offsets into the text")
    spans: list[EntitySpan] | None = None


class TagResponse(BaseModel):
    model: str
    version: str
    results: list[TagResult]


class ConlluResponse(BaseModel):
    """`format: conllu`: one CoNLL-U document (UDPipe's REST service answers the same in `result`)."""

    model: str
    version: str
    format: Literal["conllu"]
    conllu: str


class DisplacyEntity(BaseModel):
    start: int = Field(description="first character")
    end: int = Field(description="character after the last")
    label: str


class DisplacyEntities(BaseModel):
    """One input in displaCy's manual entity format (span models)."""

    text: str
    ents: list[DisplacyEntity]
    title: None = None


class DisplacyWord(BaseModel):
    text: str
    tag: str


class DisplacyWords(BaseModel):
    """One input in displaCy's manual dependency format, without arcs (tag models)."""

    words: list[DisplacyWord]
    arcs: list[dict[str, Any]]
    title: None = None


class DisplacyResponse(BaseModel):
    """`format: displacy`: `displacy.render(results, style="ent" or "dep", manual=True)` draws it."""

    model: str
    version: str
    format: Literal["displacy"]
    style: Literal["ent", "dep"] = Field(description="the displacy style the results are for")
    results: list[DisplacyEntities] | list[DisplacyWords]


class Limits(BaseModel):
    max_sentences: int
    max_tokens: int
    max_request_tokens: int
    max_token_chars: int
    max_text_chars: int
    max_body_bytes: int
    max_top_k: int
    max_response_values: int


class ModelInfo(BaseModel):
    name: str
    version: str
    task: str
    scheme: str | None = Field(description="scheme of the tags answers carry: IOB2 for span models, null otherwise")
    tags: list[str] = Field(description="every tag an answer can carry (for span models: B-/I- of each label, and O)")
    span_labels: list[str] | None = Field(None, description="span models: the entity labels of `spans`")
    model_scheme: str | None = Field(
        None, description="span models: the scheme the model tags in internally (BIOES), decoded to `scheme`"
    )
    scores: dict[str, Any]
    sha256: str
    exported_at: str
    limits: Limits
    card: str | None = Field(
        None, description="the model card (Markdown): data, domains, scores, known failures; in GET /v1/models/{model}"
    )


class ModelList(BaseModel):
    default: str
    models: list[ModelInfo]


class ErrorDetail(BaseModel):
    status: int
    reason: str = Field(description="machine-readable cause, the `reason` label of tagger_rejections")
    message: str
    field: str | None = None
    line: int | None = Field(default=None, description="conllu input: the 1-based line the refusal is about")
    request_id: str | None = None  # the request's X-Request-ID (the client's, or one made for it)


class ErrorResponse(BaseModel):
    error: ErrorDetail


class DriftReport(BaseModel):
    """GET /v1/models/{model}/drift: live figures of this process against the export's reference profile.

    Each figure set has tokens, sentences, unknown_rate, low_confidence_share (chosen tag's probability <= 0.8),
    case_mix, script_mix, tag_shares and spans_per_100_tokens; live sets add `against_reference` (the ratios of the
    unknown-word rate and the low-confidence share to the reference's, and the PSI of the case, script and tag
    mixes) when the export has a reference."""

    model: str
    version: str
    reference: dict[str, Any] | None = Field(description="the export's reference profile (None: it has none)")
    since_start: dict[str, Any] = Field(description="since this version was loaded in this process")
    recent: dict[str, Any] = Field(description="over the last 15 minutes (`seconds`: the span covered)")
