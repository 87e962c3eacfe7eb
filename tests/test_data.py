"""Data sources, the split rule, labels and class weights."""

from __future__ import annotations

import subprocess
from collections import Counter

import numpy as np
import pytest
from conftest import write_csv

from hf_project.config import DataArguments
from hf_project.data import prepare_data
from hf_project.data.builtin import load_fortunes
from hf_project.data.labels import class_weights
from hf_project.errors import UserError


def test_split_rule_matches_an_independent_computation(fortunes_csv):
    data = prepare_data(DataArguments(dataset=str(fortunes_csv)), seed=2023)
    n = 180
    perm = np.random.default_rng(2023).permutation(n)
    n_test = round(0.2 * n)
    assert data.split["test"]["indices"] == perm[n - n_test :].tolist()
    rest = set(perm[: n - n_test].tolist())
    train, val = data.split["train"]["indices"], data.split["validation"]["indices"]
    assert set(train) | set(val) == rest and not set(train) & set(val)
    assert len(val) == pytest.approx(0.1 * len(rest), abs=3)
    # Stratified: every class keeps about its share in validation.
    assert set(Counter(data.splits["validation"]["label"]).values()) <= {5, 6}


def test_columns_read_whole_give_each_row_its_own_text_and_label(tmp_path):
    rows = [{"text": "" if i % 7 == 0 else f"cookie {i}", "label": ("spam", "ham")[i % 2]} for i in range(60)]
    data = prepare_data(DataArguments(dataset=str(write_csv(tmp_path / "rows.csv", rows))), seed=2023)
    for part in ("train", "validation", "test"):
        indices = data.split[part]["indices"]
        assert list(data.splits[part]["text"]) == [rows[i]["text"] for i in indices]  # a missing text reads as ""
        assert data.references(part) == [data.label_names.index(rows[i]["label"]) for i in indices]
    floats = [{"text": f"cookie {i}", "label": i / 7} for i in range(60)]
    with pytest.raises(UserError, match="looks continuous"):
        prepare_data(DataArguments(dataset=str(write_csv(tmp_path / "floats.csv", floats))), seed=2023)


def test_same_settings_same_hash_other_seed_other_split(fortunes_csv):
    a = prepare_data(DataArguments(dataset=str(fortunes_csv)), seed=2023)
    b = prepare_data(DataArguments(dataset=str(fortunes_csv)), seed=2023)
    c = prepare_data(DataArguments(dataset=str(fortunes_csv)), seed=7)
    assert a.split == b.split
    assert c.split["hash"] != a.split["hash"] and c.split["test"] != a.split["test"]


def test_provided_splits_are_used_as_is(tmp_path):
    train = [{"text": f"word{i % 2} text {i}", "label": ["neg", "pos"][i % 2]} for i in range(40)]
    val = [{"text": "v", "label": "pos"}, {"text": "w", "label": "neg"}]
    test = [{"text": "t", "label": "neg"}, {"text": "u", "label": "pos"}, {"text": "x", "label": "pos"}]
    args = DataArguments(
        train_file=str(write_csv(tmp_path / "tr.csv", train)),
        validation_file=str(write_csv(tmp_path / "va.csv", val)),
        test_file=str(write_csv(tmp_path / "te.csv", test)),
    )
    data = prepare_data(args, seed=2023)
    assert data.split["test"] == {"source": "test", "indices": [0, 1, 2]}
    assert data.split["validation"] == {"source": "validation", "indices": [0, 1]}
    assert sorted(data.split["train"]["indices"]) == list(range(40))
    assert data.label_names == ["neg", "pos"]
    assert list(data.splits["test"]["label"]) == [0, 1, 1]


def test_columns_are_mapped_and_labels_become_classlabel(tmp_path):
    rows = [{"body": f"text {i}", "y": ["b", "a", "c"][i % 3]} for i in range(30)]
    path = write_csv(tmp_path / "d.csv", rows)
    data = prepare_data(DataArguments(dataset=str(path), text_column="body", label_column="y"), seed=2023)
    assert data.label_names == ["a", "b", "c"]
    assert data.splits["train"].features["label"].names == ["a", "b", "c"]
    assert data.splits["train"].column_names == ["text", "label"]


@pytest.mark.parametrize("suffix", ["json", "jsonl", "parquet"])
def test_other_file_formats(tmp_path, suffix):
    import pandas as pd

    frame = pd.DataFrame({"text": [f"t{i}" for i in range(20)], "label": [i % 2 for i in range(20)]})
    path = tmp_path / f"d.{suffix}"
    if suffix == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=True)
    data = prepare_data(DataArguments(dataset=str(path)), seed=2023)
    assert data.label_names == ["0", "1"] and sum(len(s) for s in data.splits.values()) == 20


def test_builtin_fortunes_only_from_its_packages():
    listed = subprocess.run(["dpkg", "-L", "fortunes", "fortunes-min"], capture_output=True, text=True).stdout
    expected = {line.rsplit("/", 1)[1] for line in listed.splitlines() if line.endswith(".dat")}
    ds = load_fortunes()["train"]
    names = ds.features["label"].names
    assert set(names) == {n.removesuffix(".dat") for n in expected}
    assert len(names) == 43 and len(ds) > 14000
    counts = Counter(ds["label"])
    assert min(counts.values()) < 10 < 1000 < max(counts.values())  # real, imbalanced categories


def test_fortunes_split_keeps_every_class_in_train():
    data = prepare_data(DataArguments(), seed=2023)
    assert all(row["train"] > 0 for row in data.class_balance)
    assert sum(len(s) for s in data.splits.values()) == len(load_fortunes()["train"])


def test_max_train_samples_keeps_the_seeded_head(fortunes_csv):
    full = prepare_data(DataArguments(dataset=str(fortunes_csv)), seed=2023)
    small = prepare_data(DataArguments(dataset=str(fortunes_csv), max_train_samples=50), seed=2023)
    assert small.split["train"]["indices"] == full.split["train"]["indices"][:50]
    assert small.split["test"] == full.split["test"] and small.split["hash"] != full.split["hash"]


def test_class_weights_are_balanced():
    weights = class_weights([0, 0, 0, 1], 3)
    assert weights == pytest.approx([4 / 9, 4 / 3, 0.0])


@pytest.mark.parametrize(
    ("rows", "kwargs", "message"),
    [
        ([{"text": "a", "label": "x"}] * 10, {}, "single class"),
        ([{"txt": "a", "label": "x"}] * 10, {}, "text column 'text' not found"),
        ([{"text": "a", "lab": "x"}] * 10, {}, "label column 'label' not found"),
    ],
)
def test_bad_data_is_a_user_error(tmp_path, rows, kwargs, message):
    path = write_csv(tmp_path / "d.csv", rows)
    with pytest.raises(UserError, match=message):
        prepare_data(DataArguments(dataset=str(path), **kwargs), seed=2023)


def test_label_missing_from_train_is_an_error(tmp_path):
    train = [{"text": f"t{i}", "label": ["a", "b"][i % 2]} for i in range(20)]
    test = [{"text": "t", "label": "zebra"}]
    args = DataArguments(train_file=str(write_csv(tmp_path / "tr.csv", train)),
                         test_file=str(write_csv(tmp_path / "te.csv", test)))
    with pytest.raises(UserError, match="zebra in the test split never occur in train"):
        prepare_data(args, seed=2023)


def test_missing_empty_and_broken_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        prepare_data(DataArguments(dataset=str(tmp_path / "nope.csv")), seed=2023)
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    with pytest.raises(UserError, match="empty"):
        prepare_data(DataArguments(dataset=str(empty)), seed=2023)
    broken = tmp_path / "broken.json"
    broken.write_text("{this is not json")
    with pytest.raises(UserError, match="could not parse"):
        prepare_data(DataArguments(dataset=str(broken)), seed=2023)


def test_unreachable_hub_dataset_names_the_fix():
    with pytest.raises(UserError, match="cannot load dataset .* from the Hugging Face hub"):
        prepare_data(DataArguments(dataset="no-such-org/no-such-dataset"), seed=2023)
