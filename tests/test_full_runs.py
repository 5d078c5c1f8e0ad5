"""The full-length training runs behind the issue's accuracy targets.

They take minutes, so they are marked slow and deselected by default (CI runs the
short versions in test_datasets.py, test_gpt.py and test_resnet.py). Run them with

    pytest -m slow tests/test_full_runs.py
"""
import importlib.util
import os

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


def load_script(name, monkeypatch):
    monkeypatch.syspath_prepend(BENCHMARKS)          # the scripts import benchmarks/common.py
    spec = importlib.util.spec_from_file_location(name, os.path.join(BENCHMARKS, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_transformer_translates_unseen_dates_with_at_least_95_percent_exact_match(tmp_path, monkeypatch):
    script = load_script("train_translation", monkeypatch)
    result = script.main(["--out", str(tmp_path / "translation")])
    assert result["test_exact_match"] >= 0.95, result["test_exact_match"]


@pytest.mark.slow
def test_resnet_reads_held_out_digits_with_at_least_97_percent_accuracy(monkeypatch):
    script = load_script("train_digits", monkeypatch)
    result = script.main(["--no-write"])
    assert result["resnet"]["test_accuracy"] >= 0.97, result["resnet"]
    assert result["mlp"]["test_accuracy"] > 0.9, result["mlp"]


@pytest.mark.slow
def test_gpt_on_the_standard_library_learns_well_below_the_uniform_loss(tmp_path, monkeypatch):
    script = load_script("train_gpt", monkeypatch)
    result = script.main(["--out", str(tmp_path / "gpt")])
    assert result["final_val_loss"] < 0.5 * result["initial_val_loss"], result
