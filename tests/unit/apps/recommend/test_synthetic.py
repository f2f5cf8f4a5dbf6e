"""Synthetic interaction logs: calibration on MovieLens-100k, determinism, streaming and writers."""

from __future__ import annotations

import doctest
import importlib
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from mlscale._cli import synth as synth_cli
from mlscale.apps.recommend._profile import gini
from mlscale.apps.recommend.profile import InteractionProfile, default_profile
from mlscale.apps.recommend.synthetic import SCHEMA, default_sizes, generate
from mlscale.cli import main
from mlscale.data.writers import write_csv, write_parquet
from mlscale.errors import DataError, DataFormatError, ValidationError


def _table(profile: InteractionProfile | None, rows: int, **kwargs: object) -> pa.Table:
    return pa.Table.from_batches(list(generate(profile, rows, **kwargs)), schema=SCHEMA)  # type: ignore[arg-type]


def _counts(column: pa.ChunkedArray) -> np.ndarray:
    return np.unique(column.to_numpy(), return_counts=True)[1]


def _top_share(counts: np.ndarray, fraction: float = 0.1) -> float:
    ordered = np.sort(counts)[::-1]
    return float(ordered[: max(1, int(len(ordered) * fraction))].sum() / ordered.sum())


@pytest.fixture(scope="module")
def movielens(shared_data: Path) -> pa.Table:
    return pacsv.read_csv(
        shared_data / "movielens-100k" / "u.data",
        read_options=pacsv.ReadOptions(column_names=["user", "item", "rating", "timestamp"]),
        parse_options=pacsv.ParseOptions(delimiter="\t"),
    )


@pytest.fixture(scope="module")
def synthetic_100k() -> pa.Table:
    return _table(default_profile(), 100_000, seed=11)


@pytest.mark.parametrize(
    "name",
    [
        "mlscale.apps.recommend.synthetic",
        "mlscale.apps.recommend.profile",
        "mlscale.apps.recommend._profile",
        "mlscale.data.writers",
        "mlscale._cli.synth",
    ],
)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


# --- calibration on real data -------------------------------------------------------------------


def test_builtin_profile_is_the_fit_of_movielens_100k(movielens: pa.Table) -> None:
    fitted = InteractionProfile.fit(movielens, name="movielens-100k")
    assert fitted == default_profile()
    assert (fitted.n_rows, fitted.n_users, fitted.n_items) == (100_000, 943, 1682)
    assert fitted.rating_values == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert 2.0 < fitted.activity_tail_alpha < 5.0


def test_generated_log_has_the_shape_of_movielens(movielens: pa.Table, synthetic_100k: pa.Table) -> None:
    real_users, fake_users = _counts(movielens["user"]), _counts(synthetic_100k["user"])
    real_items, fake_items = _counts(movielens["item"]), _counts(synthetic_100k["item"])
    # Same sizes by the profile's ratios, so the same mean activity.
    assert len(fake_users) == len(real_users) == 943
    assert abs(fake_users.mean() / real_users.mean() - 1) < 0.2
    assert abs(gini(fake_users) - gini(real_users)) < 0.03
    assert abs(np.median(fake_users) / np.median(real_users) - 1) < 0.15
    assert fake_users.min() >= 15
    assert abs(gini(fake_items) - gini(real_items)) < 0.05
    assert abs(_top_share(fake_items) - _top_share(real_items)) < 0.05
    assert abs(len(fake_items) - len(real_items)) < 0.1 * len(real_items)
    real_pmf = np.unique(movielens["rating"].to_numpy(), return_counts=True)[1] / movielens.num_rows
    values, counts = np.unique(synthetic_100k["rating"].to_numpy(), return_counts=True)
    assert values.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert np.abs(counts / synthetic_100k.num_rows - real_pmf).max() < 0.02
    ts = synthetic_100k["timestamp"].to_numpy()
    assert default_profile().time_min <= ts.min()
    assert ts.max() <= default_profile().time_max


def test_shape_holds_at_larger_scale() -> None:
    profile = default_profile()
    table = _table(profile, 1_000_000, seed=2)
    users, items = _counts(table["user"]), _counts(table["item"])
    n_users, n_items = default_sizes(profile, 1_000_000)
    assert len(users) == n_users
    assert 0.98 * n_items < len(items) <= n_items  # a few tail items get no interaction
    assert abs(gini(users) - 0.472) < 0.03
    assert abs(gini(items) - 0.629) < 0.02
    assert abs(_top_share(items) - 0.427) < 0.02
    # The Pareto tail extrapolates past the largest MovieLens-100k user.
    assert users.max() > 737


def test_refit_of_generated_log_recovers_the_profile(synthetic_100k: pa.Table) -> None:
    base = default_profile()
    refit = InteractionProfile.fit(synthetic_100k)
    assert refit.n_users == base.n_users
    assert np.allclose(refit.activity_values, base.activity_values, rtol=0.15)
    assert abs(refit.activity_tail_alpha - base.activity_tail_alpha) < 0.5
    assert np.allclose(refit.rating_probs, base.rating_probs, atol=0.02)
    assert abs(refit.time_min - base.time_min) < 0.01 * (base.time_max - base.time_min)


def _recall_at_10(table: pa.Table) -> tuple[float, float]:
    """Recall@10 of popularity and of item-item cosine on a random 20% hold-out."""
    users = table["user"].to_numpy() - 1
    items = table["item"].to_numpy() - 1
    shape = (int(users.max()) + 1, int(items.max()) + 1)
    test = np.random.default_rng(0).random(users.size) < 0.2
    train = sp.csr_matrix((np.ones(int((~test).sum())), (users[~test], items[~test])), shape=shape)
    train.data[:] = 1.0
    truth = sp.csr_matrix((np.ones(int(test.sum())), (users[test], items[test])), shape=shape)
    truth.data[:] = 1.0
    pop = np.asarray(train.sum(axis=0)).ravel()
    norm = np.sqrt(pop) + 1e-9
    sim = (train.T @ train).toarray() / norm[:, None] / norm[None, :]
    np.fill_diagonal(sim, 0.0)
    knn = np.asarray(train @ sim)
    hits = {"pop": 0.0, "knn": 0.0}
    total = 0.0
    for u in np.unique(users[test]):
        seen, wanted = train[u].indices, set(truth[u].indices.tolist())
        for name, score in (("pop", pop.astype(float).copy()), ("knn", knn[u].copy())):
            score[seen] = -np.inf
            hits[name] += len(wanted & set(np.argpartition(-score, 10)[:10].tolist()))
        total += min(10, len(wanted))
    return hits["pop"] / total, hits["knn"] / total


def test_latent_genres_are_learnable(synthetic_100k: pa.Table) -> None:
    pop, knn = _recall_at_10(synthetic_100k)
    assert knn > 1.3 * pop
    # Without taste there is nothing beyond popularity to learn.
    pop0, knn0 = _recall_at_10(_table(default_profile(), 100_000, seed=11, focus=0.0))
    assert knn0 < 1.1 * pop0


# --- determinism, counts, chunking ----------------------------------------------------------------


def test_same_seed_same_rows_whatever_the_chunk_size() -> None:
    a = _table(None, 300_000, seed=5, chunk_rows=1_000_000)
    b = _table(None, 300_000, seed=5, chunk_rows=7_777)
    assert a.equals(b)
    c = _table(None, 300_000, seed=6)
    assert not a.equals(c)
    assert not np.array_equal(a["item"].to_numpy(), c["item"].to_numpy())


def test_exact_rows_and_chunks() -> None:
    batches = list(generate(None, 12_345, seed=1, chunk_rows=1000))
    assert [b.num_rows for b in batches] == [1000] * 12 + [345]
    assert all(b.schema == SCHEMA for b in batches)


def test_layout_ids_and_repeats(synthetic_100k: pa.Table) -> None:
    users = synthetic_100k["user"].to_numpy()
    items = synthetic_100k["item"].to_numpy()
    assert np.all(np.diff(users) >= 0)  # grouped by user, ascending ids
    assert users.min() == 1
    assert users.max() == 943
    assert items.min() >= 1
    assert items.max() <= 1682
    pairs = users * 10_000 + items
    assert np.unique(pairs).size == pairs.size  # sampled without repeats
    ts = synthetic_100k["timestamp"].to_numpy()
    same_user = users[1:] == users[:-1]
    assert np.all(ts[1:][same_user] >= ts[:-1][same_user])  # each user's rows in time order


def test_explicit_sizes() -> None:
    table = _table(None, 50_000, seed=3, users=500, items=20_000)
    assert table.num_rows == 50_000
    assert len(np.unique(table["user"].to_numpy())) == 500
    assert table["item"].to_numpy().max() <= 20_000


@pytest.mark.parametrize(
    ("rows", "users", "items"),
    [(1, None, None), (10, 50, None), (5_000, 3, 2), (2_000, 10, 1), (20_000, 10, 3_000), (3_000, 200, 5)],
)
def test_edge_sizes_keep_the_exact_row_count(rows: int, users: int | None, items: int | None) -> None:
    table = _table(None, rows, users=users, items=items)
    assert table.num_rows == rows
    if items is not None:
        assert table["item"].to_numpy().max() <= items
        pairs = table["user"].to_numpy() * (items + 1) + table["item"].to_numpy()
        # Repeats only where a user has more rows than there are items.
        per_user = np.bincount(table["user"].to_numpy())
        assert np.unique(pairs).size >= np.minimum(per_user, items).sum() * 0.99


def test_default_sizes_grow_sub_linearly() -> None:
    profile = default_profile()
    sizes = [default_sizes(profile, n) for n in (1_000, 10**5, 10**7, 10**8, 10**9)]
    assert sizes[1] == (943, 1682)
    users, items = zip(*sizes, strict=True)
    assert list(users) == sorted(users)
    assert list(items) == sorted(items)
    assert 300_000 < users[3] < 1_000_000
    assert 50_000 < items[3] < 200_000
    assert users[4] / users[3] < 10
    assert items[4] / items[3] < 5


def test_memory_does_not_grow_with_rows() -> None:
    def peak(rows: int) -> int:
        tracemalloc.start()
        try:
            n = 0
            for batch in generate(None, rows, seed=1, chunk_rows=100_000):
                n += batch.num_rows
            assert n == rows
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(600_000), peak(3_000_000)
    assert large < 1.3 * small + (4 << 20)
    # Blocks of 2**17 rows plus one chunk, far below holding the rows (28 bytes each).
    assert large < 40 << 20


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rows": 0}, "rows"),
        ({"rows": 10, "seed": -1}, "seed"),
        ({"rows": 10, "users": 0}, "users"),
        ({"rows": 10, "chunk_rows": 0}, "chunk_rows"),
        ({"rows": 10, "focus": 1.5}, "focus"),
        ({"rows": 2.5}, "rows"),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict[str, object], field: str) -> None:
    rows = kwargs.pop("rows")
    with pytest.raises(ValidationError) as err:
        generate(None, rows, **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field


# --- profiles ---------------------------------------------------------------------------------------


def test_profile_json_round_trip(tmp_path: Path) -> None:
    profile = default_profile()
    text = profile.to_json()
    assert json.loads(text)["format"] == "mlscale.interaction-profile"
    assert len(text) < 16_000
    assert InteractionProfile.from_json(text) == profile
    path = profile.save(tmp_path / "p.json")
    assert InteractionProfile.load(path) == profile


def test_bad_profile_files_say_what_is_wrong(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataFormatError, match=r"bad\.json, line 1: invalid JSON"):
        InteractionProfile.load(bad)
    data = default_profile().to_dict()
    data["version"] = 99
    bad.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match="unsupported profile version 99"):
        InteractionProfile.load(bad)
    data = default_profile().to_dict()
    del data["rating_probs"]
    with pytest.raises(ValidationError, match="missing: rating_probs"):
        InteractionProfile.from_dict(data)
    data = default_profile().to_dict()
    data["rating_probs"] = [0.5, 0.5, 0.5, 0.5, 0.5]
    with pytest.raises(ValidationError, match="rating_probs"):
        InteractionProfile.from_dict(data)
    with pytest.raises(DataError, match="no such profile"):
        InteractionProfile.load(tmp_path / "absent.json")


def test_fit_implicit_log_with_string_ids() -> None:
    rng = np.random.default_rng(0)
    users = [f"u{i}" for i in rng.integers(0, 200, 5_000)]
    items = [f"i{i}" for i in rng.zipf(1.5, 5_000) % 1000]
    profile = InteractionProfile.fit(pa.table({"user": users, "item": items}), name="toy")
    assert profile.rating_values == (1.0,)
    assert profile.n_rows == 5_000
    assert profile.n_users <= 200
    assert profile.time_min == default_profile().time_min
    table = _table(profile, 20_000, seed=1)
    assert set(np.unique(table["rating"].to_numpy()).tolist()) == {1.0}


def test_fit_refuses_unusable_tables() -> None:
    with pytest.raises(DataFormatError, match="missing column"):
        InteractionProfile.fit(pa.table({"user": [1], "product": [2]}))
    with pytest.raises(DataError, match="empty"):
        InteractionProfile.fit(pa.table({"user": pa.array([], pa.int64()), "item": pa.array([], pa.int64())}))


# --- writers ---------------------------------------------------------------------------------------


def test_parquet_round_trip(tmp_path: Path) -> None:
    expected = _table(None, 10_000, seed=4)
    out = tmp_path / "log"
    files = write_parquet(generate(None, 10_000, seed=4, chunk_rows=3_000), out, rows_per_file=2_500)
    assert [f.name for f in files] == [f"part-{i:05d}.parquet" for i in range(4)]
    assert [pq.ParquetFile(f).metadata.num_rows for f in files] == [2_500] * 4
    back = pa.concat_tables([pq.read_table(f) for f in files])
    assert back.cast(SCHEMA).equals(expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log"]  # no temporary folder left
    with pytest.raises(ValidationError, match="already exists"):
        write_parquet(generate(None, 10), out)
    files = write_parquet(generate(None, 10), out, overwrite=True)
    assert len(files) == 1
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet"]


def test_parquet_writer_leaves_nothing_when_interrupted(tmp_path: Path) -> None:
    def failing() -> Iterator[pa.RecordBatch]:
        yield from generate(None, 1_000, chunk_rows=400)
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_parquet(failing(), tmp_path / "log", rows_per_file=500)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("compressed", [False, True])
def test_csv_round_trip(tmp_path: Path, compressed: bool, capsys: pytest.CaptureFixture[str]) -> None:
    expected = _table(None, 5_000, seed=9)
    path = tmp_path / ("log.csv.gz" if compressed else "log.csv")
    write_csv(generate(None, 5_000, seed=9, chunk_rows=1_500), path, gzip=compressed, progress=True, total=5_000)
    assert "rows" in capsys.readouterr().err
    raw = path.read_bytes()
    assert raw[:2] == b"\x1f\x8b" if compressed else raw.startswith(b"user,item,rating,timestamp\n")
    back = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=SCHEMA))
    assert back.num_rows == 5_000
    for name in SCHEMA.names:
        assert np.array_equal(back[name].to_numpy(), expected[name].to_numpy())


def test_csv_options(tmp_path: Path) -> None:
    path = write_csv(generate(None, 100, seed=1), tmp_path / "log.tsv", sep="\t", header=False)
    lines = path.read_text().splitlines()
    assert len(lines) == 100
    assert len(lines[0].split("\t")) == 4
    with pytest.raises(ValidationError, match="sep"):
        write_csv(generate(None, 10), tmp_path / "x.csv", sep="::")


# --- command line -------------------------------------------------------------------------------


def test_cli_writes_parquet_and_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "synth", "--rows", "20k", "--out", str(tmp_path / "pq"), "--seed", "4"]) == 0
    assert "wrote 20,000 rows" in capsys.readouterr().out
    table = pq.read_table(tmp_path / "pq")
    assert table.num_rows == 20_000
    assert main(["data", "synth", "--rows", "2e4", "--out", str(tmp_path / "a.csv.gz"), "--seed", "4"]) == 0
    back = pacsv.read_csv(tmp_path / "a.csv.gz")
    assert back.num_rows == 20_000
    assert np.array_equal(back["item"].to_numpy(), table["item"].to_numpy())


def test_cli_like_a_catalogue_data_set_or_profile(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "ml.json"
    args = ["data", "synth", "--rows", "5000", "--like", "movielens-latest-small"]
    assert (
        main(
            [
                *args,
                "--data-dir",
                str(shared_data),
                "--out",
                str(tmp_path / "a.csv"),
                "--save-profile",
                str(saved),
            ]
        )
        == 0
    )
    assert "like movielens-latest-small" in capsys.readouterr().out
    assert InteractionProfile.load(saved).n_items == 9_724
    assert main(["data", "synth", "--rows", "5000", "--like", str(saved), "--out", str(tmp_path / "b.csv")]) == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rows", "1.5"], "--rows: expected a whole number"),
        (["--rows", "ten"], "--rows: expected a whole number such as 1e7"),
        (["--rows", "0"], "--rows: expected a number >= 1"),
        (["--rows", "1e99999"], "--rows: expected at most 1e+15"),
        (["--rows", "10", "--users", "-3"], "--users"),
    ],
)
def test_cli_bad_values_name_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["data", "synth", *argv, "--out", str(tmp_path / "x")]) == ValidationError.exit_code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_cli_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.csv"
    out.write_text("keep me")
    assert main(["data", "synth", "--rows", "10", "--out", str(out)]) == ValidationError.exit_code
    assert "--out" in capsys.readouterr().err
    assert out.read_text() == "keep me"
    assert main(["data", "synth", "--rows", "10", "--out", str(out), "--overwrite"]) == 0
    assert len(out.read_text().splitlines()) == 11


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e7", 10**7),
        ("10_000_000", 10**7),
        ("10,000,000", 10**7),
        ("10M", 10**7),
        ("1.5k", 1500),
        ("1B", 10**9),
    ],
)
def test_parse_count(text: str, value: int) -> None:
    assert synth_cli.parse_count(text) == value
