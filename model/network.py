"""The BiLSTM tagger: word + casing + character-CNN features -> BiLSTM -> tag scores.

The forward pass is tensors in, tensors out (padded ids + lengths -> scores), so
it exports to one ONNX graph. Two things keep a sentence's scores independent
of its batch: the LSTM runs on packed sequences (ONNX `sequence_lens`), and the
character CNN's max-pool ignores character padding (ReLU outputs are >= 0, so
zeroing padded positions before the max cannot change it).

A model configured with name lists (`model.gazetteer`) takes a fifth input,
`gazetteer` (B, T, L): per token one match code per list (`tagger.gazetteer`),
each embedded on its own and concatenated to the word features. Without lists
the graph is exactly the four-input one.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from model.config import ModelConfig
from model.crf import CRF
from model.quantize import Bits, code_width, dequantize, quantize
from tagger.encoding import CASINGS, PAD
from tagger.gazetteer import N_CODES


class CharCNN(nn.Module):
    """Per-token features from its characters: embed, convolve, ReLU, masked max-pool."""

    def __init__(self, n_chars: int, config: ModelConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_chars, config.char_dim, padding_idx=PAD)
        self.conv = nn.Conv1d(config.char_dim, config.char_filters, config.char_kernel, padding=config.char_kernel // 2)

    def forward(self, chars: Tensor) -> Tensor:
        """chars (B, T, C) int64 -> features (B, T, F)."""
        b, t, _ = chars.shape
        return self.states(chars).max(dim=2).values.reshape(b, t, -1)  # (B, T, F)

    def states(self, chars: Tensor) -> Tensor:
        """chars (B, T, C) int64 -> the convolution's output at every character (B*T, F, C), 0 at padding.

        The character language model (`model.charlm`) trains on these; the tagger max-pools them.
        """
        b, t, c = chars.shape
        flat = chars.reshape(b * t, c)  # (B*T, C)
        # Padding ids embed to zero, exactly what the convolution pads with,
        # so outputs at real characters do not depend on the padded width C.
        x = self.embed(flat).transpose(1, 2)  # (B*T, E, C)
        h = torch.relu(self.conv(x))  # (B*T, F, C)
        return h * (flat != PAD).unsqueeze(1).to(h.dtype)  # zero padded characters


class Tagger(nn.Module):
    """Scores every tag at every token; decoding happens in `tagger.decoding`."""

    def __init__(
        self,
        config: ModelConfig,
        n_words: int,
        n_chars: int,
        n_tags: int,
        pretrained: np.ndarray | None = None,
        n_frozen_words: int = 0,
        crf: CRF | None = None,
    ) -> None:
        super().__init__()
        if pretrained is not None and pretrained.shape != (n_words, config.word_dim):
            raise ValueError(f"pretrained vectors must be {(n_words, config.word_dim)}, got {pretrained.shape}")
        # Words seen in training are fine-tuned; the last `n_frozen_words` rows
        # (GloVe words never seen in training, and with `glove_freeze` every word
        # GloVe has) get no gradient, so they are kept as a buffer and cost the
        # optimizer nothing.
        # With `glove_int8` / `glove_int4` they are stored as codes with one
        # scale per row (`model.quantize`): a 4x / 8x smaller export, so far
        # more GloVe words fit in the size budget; PyTorch and ONNX dequantize alike.
        self.words = nn.Embedding(n_words - n_frozen_words, config.word_dim, padding_idx=PAD)
        self.bits: Bits | None = 4 if config.glove_int4 else 8 if config.glove_int8 else None
        self.frozen_words: Tensor
        self.frozen_scales: Tensor
        if self.bits is None:
            self.register_buffer("frozen_words", torch.zeros(n_frozen_words, config.word_dim))
        else:
            dtype = torch.int8 if self.bits == 8 else torch.uint8
            width = code_width(config.word_dim, self.bits)
            self.register_buffer("frozen_words", torch.zeros(n_frozen_words, width, dtype=dtype))
            self.register_buffer("frozen_scales", torch.ones(n_frozen_words, 1))
        if pretrained is not None:
            vectors = torch.from_numpy(pretrained)
            self.words.weight.data.copy_(vectors[: n_words - n_frozen_words])
            self.set_frozen(vectors[n_words - n_frozen_words :])
        self.cases = nn.Embedding(len(CASINGS), config.case_dim, padding_idx=PAD)
        self.chars = CharCNN(n_chars, config)
        # One table for all lists: list k's codes are rows k * N_CODES ... k * N_CODES + N_CODES - 1.
        self.n_lists = len(config.gazetteer_lists())
        self.gazetteer = nn.Embedding(self.n_lists * N_CODES, config.gazetteer_dim) if self.n_lists else None
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(
            config.word_dim + config.case_dim + config.char_filters + self.n_lists * config.gazetteer_dim,
            config.hidden,
            num_layers=config.layers,
            bidirectional=True,
            batch_first=True,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.out = nn.Linear(2 * config.hidden, n_tags)
        # Not part of the exported graph: the CRF only shapes training and
        # hands its transition scores to the shared decoder.
        self.crf = crf

    def set_frozen(self, vectors: Tensor) -> None:
        """Store the frozen (pretrained, never trained) rows, quantizing them if the model keeps codes."""
        if self.bits is None:
            self.frozen_words.copy_(vectors)
            return
        codes, scales = quantize(vectors, self.bits)
        self.frozen_words.copy_(codes)
        self.frozen_scales.copy_(scales)

    def embed_words(self, words: Tensor) -> Tensor:
        """(B, T) word ids -> (B, T, word_dim): trained rows first, then the frozen ones."""
        if not self.frozen_words.shape[0]:
            return self.words(words)
        if self.bits is None:
            table = torch.cat([self.words.weight, self.frozen_words])
            return nn.functional.embedding(words, table, padding_idx=PAD)
        n_trained = self.words.num_embeddings
        trained = words < n_trained
        own = self.words(torch.where(trained, words, torch.zeros_like(words)))
        rows = (words - n_trained).clamp(min=0)
        frozen = dequantize(self.frozen_words[rows], self.frozen_scales[rows], self.bits, own.shape[-1])
        return torch.where(trained.unsqueeze(-1), own, frozen)

    def forward(
        self, words: Tensor, cases: Tensor, chars: Tensor, lengths: Tensor, gazetteer: Tensor | None = None
    ) -> Tensor:
        """words, cases (B, T), chars (B, T, C), lengths (B,), gazetteer (B, T, L) -> scores (B, T, K).

        `gazetteer` is required by a model with name lists and refused by one without.
        Scores at padded positions are meaningless and must be ignored.
        """
        return self.scores_and_char_states(words, cases, chars, lengths, gazetteer)[0]

    def scores_and_char_states(
        self, words: Tensor, cases: Tensor, chars: Tensor, lengths: Tensor, gazetteer: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """`forward`'s scores (B, T, K), and the character CNN's states (B*T, F, C) for the character LM."""
        b, t = words.shape
        embedded = self.embed_words(words)  # (B, T, word_dim)
        char_states = self.chars.states(chars)  # (B*T, F, C)
        features = [embedded, self.cases(cases), char_states.max(dim=2).values.reshape(b, t, -1)]
        if self.gazetteer is not None:
            if gazetteer is None or gazetteer.shape[-1] != self.n_lists:
                got = "none" if gazetteer is None else gazetteer.shape[-1]
                raise ValueError(f"this model reads {self.n_lists} name lists (gazetteer input (B, T, L)), got {got}")
            offsets = torch.arange(self.n_lists, dtype=gazetteer.dtype) * N_CODES  # (L,)
            features.append(self.gazetteer(gazetteer + offsets).flatten(2))  # (B, T, L * gazetteer_dim)
        elif gazetteer is not None:
            raise ValueError("this model reads no name lists, but a gazetteer input was given")
        x = torch.cat(features, dim=-1)  # (B, T, D)
        x = self.dropout(x)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        h, _ = self.lstm(packed)
        h, _ = pad_packed_sequence(h, batch_first=True, total_length=words.shape[1])  # (B, T, 2H)
        return self.out(self.dropout(h)), char_states  # (B, T, K), (B*T, F, C)

    def loss(self, scores: Tensor, tags: Tensor, lengths: Tensor) -> Tensor:
        """Per real token: CRF negative log-likelihood, or cross-entropy; tags (B, T) padded with -100."""
        if self.crf is not None:
            return self.crf.nll(scores, tags, lengths).sum() / lengths.sum()
        return nn.functional.cross_entropy(scores.reshape(-1, scores.shape[-1]), tags.reshape(-1), ignore_index=-100)
