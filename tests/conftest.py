"""Shared fixtures: real data from ../shared/data, and one tiny trained model per session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
EWT = DATA / "ud-english-ewt"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path} (see the README: data sets live in ../shared/data)")
    return path


def first_sentences(source: Path, target: Path, n: int) -> Path:
    """Copy the first n blank-line-separated sentences of a CoNLL(-U) file."""
    blocks = source.read_text(encoding="utf-8").split("\n\n")[:n]
    target.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return target


NEEDS = ("trains", "data", "server", "install", "browser")  # markers of what a test needs, each one slow


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs a trained model, whole corpora, a server, an install or a browser is also `slow`."""
    for item in items:
        if any(item.get_closest_marker(need) for need in NEEDS):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def ewt_sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small EWT train/dev/test files cut from the real treebank."""
    folder = tmp_path_factory.mktemp("ewt")
    return {
        "train": first_sentences(need(EWT / "en_ewt-ud-train.conllu"), folder / "train.conllu", 400),
        "dev": first_sentences(need(EWT / "en_ewt-ud-dev.conllu"), folder / "dev.conllu", 120),
        "test": first_sentences(need(EWT / "en_ewt-ud-test.conllu"), folder / "test.conllu", 120),
    }


@pytest.fixture(scope="session")
def tiny_config(ewt_sample: dict[str, Path]):  # -> model.config.Config
    """A model small enough to train in seconds: sizes shrunk, no GloVe."""
    from model.config import Config, DataConfig, ModelConfig, TrainConfig

    return Config(
        name="tiny",
        data=DataConfig(
            train=str(ewt_sample["train"]), dev=str(ewt_sample["dev"]), test=str(ewt_sample["test"]), format="conllu"
        ),
        model=ModelConfig(glove=False, hidden=24, layers=2, char_dim=8, char_filters=12, case_dim=4, word_dim=16),
        train=TrainConfig(epochs=2, batch_size=16, seed=7),
    )


@pytest.fixture(scope="session")
def tiny_run(tiny_config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder trained from `tiny_config`."""
    from model.train import train

    out = tmp_path_factory.mktemp("runs") / "tiny"
    train(tiny_config, out)
    return out


@pytest.fixture(scope="session")
def tiny_export(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run exported (and so verified against PyTorch on its dev sample)."""
    from model.export import export

    out = tmp_path_factory.mktemp("exports") / "tiny"
    export(tiny_run, out)
    return out


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (marked anyio) run on asyncio, like the service."""
    return "asyncio"


@pytest.fixture(scope="session")
def models_dir(tiny_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding the tiny export, as `tagger serve --models` expects."""
    import shutil

    folder = tmp_path_factory.mktemp("models")
    shutil.copytree(tiny_export, folder / "tiny")
    return folder
