"""Character-LM co-training: targets just outside the CNN's window, a loss that trains the CNN, nothing exported."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from model.charlm import IGNORE, CharLM, targets
from model.config import ModelConfig
from model.network import Tagger
from tagger.encoding import Vocab

WORDS = ["paris", "parse", "spare", "pears", "reaps", "aspen", "sprae"]


def test_targets_lie_just_outside_the_window_and_the_edges_are_a_class() -> None:
    chars = torch.tensor([[2, 3, 4, 5, 0, 0], [7, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    ahead, behind = targets(chars, reach=1)
    assert ahead.tolist()[0] == [4, 5, 0, IGNORE, IGNORE, IGNORE]
    assert behind.tolist()[0] == [IGNORE, 0, 2, 3, IGNORE, IGNORE]
    # a one-letter word's window already sees both edges; padding tokens teach nothing
    assert set(ahead[1:].flatten().tolist()) == {IGNORE} == set(behind[1:].flatten().tolist())
    ahead, behind = targets(torch.tensor([[2, 3, 4, 5, 6, 0]]), reach=2)
    assert ahead.tolist()[0] == [5, 6, 0, IGNORE, IGNORE, IGNORE]
    assert behind.tolist()[0] == [IGNORE, IGNORE, 0, 2, 3, IGNORE]


def test_the_loss_trains_the_character_cnn_and_goes_down() -> None:
    torch.manual_seed(0)
    vocab = Vocab(words=("<pad>", "<unk>", *WORDS), chars=("<pad>", "<unk>", *sorted(set("".join(WORDS)))), tags=("O",))
    config = ModelConfig(glove=False, word_dim=8, hidden=8, char_dim=8, char_filters=16)
    model = Tagger(config, len(vocab.words), len(vocab.chars), 1)
    heads = CharLM(config.char_filters, len(vocab.chars), config.char_kernel // 2)
    chars = torch.from_numpy(vocab.encode([WORDS]).chars)
    optimizer = torch.optim.Adam([*model.chars.parameters(), *heads.parameters()], lr=0.02)
    losses = []
    for _ in range(60):
        loss = heads(model.chars.states(chars), chars)
        optimizer.zero_grad()
        loss.backward()
        assert model.chars.conv.weight.grad is not None and model.chars.conv.weight.grad.abs().sum() > 0
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.trains
def test_training_with_lists_and_the_char_lm_exports_and_serves(tmp_path: Path) -> None:
    from model.export import export
    from model.train import train
    from tagger.runtime import load_runtime
    from tests.synthetic import ner_config

    config = ner_config(tmp_path, epochs=2, char_lm=0.5)
    config = config.__class__(
        name=config.name,
        data=config.data,
        model=config.model.__class__(**{**config.model.__dict__, "gazetteer": "place,person_first"}),
        train=config.train,
    )
    best = train(config, tmp_path / "run")
    assert "char_lm" not in " ".join(torch.load(best, weights_only=True)["model"])  # the heads are not the model's
    assert "char_lm" in torch.load(tmp_path / "run" / "last.pt", weights_only=True)["state"]  # but resume keeps them
    parity = export(best, tmp_path / "export")
    assert parity.tag_mismatches == 0
    runtime = load_runtime(tmp_path / "export")
    assert runtime.vocab.gazetteer is not None and runtime.vocab.gazetteer.names == ("place", "person_first")
    assert [i.name for i in runtime.session.get_inputs()][-1] == "gazetteer"
    assert len(runtime.tag_sentences([["John", "Smith", "visited", "Paris", "."]])[0].tags) == 5
    without_codes = dataclasses.replace(runtime.vocab, gazetteer=None).encode([["John", "Smith"]])
    with pytest.raises(ValueError, match="reads name-list codes, but the batch lacks them"):
        runtime.run(without_codes)
    # and the service serves it from its inference process (name-list codes travel with each sentence)
    from service.settings import Settings
    from tests.helpers import ready_client

    models = tmp_path / "models"
    models.mkdir()
    (tmp_path / "export").rename(models / "export")
    name = runtime.name
    client = ready_client(Settings(models=models, default_model=name), seconds=120)
    try:
        sentence = ["John", "Smith", "visited", "Paris", "."]
        answer = client.post(f"/v1/models/{name}/tag", json={"sentences": [sentence]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["results"][0]["tags"] == runtime.tag_sentences([sentence])[0].tags
    finally:
        client.__exit__(None, None, None)
