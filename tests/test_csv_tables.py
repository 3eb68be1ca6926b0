"""CSV tables: import by sha256, profile, detection, and one-line errors that store nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.core.csv_agent import get_table, import_table, list_tables
from workbench.core.csv_agent.tables import bundled_tables, read_table
from workbench.core.errors import InputError
from workbench.core.store import Store

TABLES = bundled_tables()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "wb.db")


def test_bundled_tables_ship_with_attribution() -> None:
    assert set(TABLES) == {"tips", "penguins"}
    assert (next(iter(TABLES.values())).parent / "ATTRIBUTION.md").is_file()


def test_import_profiles_and_is_idempotent_by_bytes(store: Store, tmp_path: Path) -> None:
    first = import_table(store, TABLES["penguins"])
    assert first.created
    t = first.table
    assert (t.n_rows, t.n_columns, t.encoding, t.delimiter) == (344, 7, "utf-8", ",")
    bill = t.profile["columns"]["bill_length_mm"]
    assert bill["nulls"] == 2 and bill["min"] == 32.1 and bill["max"] == 59.6
    species = t.profile["columns"]["species"]
    assert species["top"][0] == ["Adelie", 152] and species["distinct"] == 3
    assert len(t.profile["head"]) == 5 and t.profile["head"][3]["bill_length_mm"] is None
    again = import_table(store, TABLES["penguins"], name="other-name")
    assert not again.created and again.table.id == t.id
    changed = tmp_path / "penguins.csv"
    changed.write_bytes(
        TABLES["penguins"].read_bytes() + b"Adelie,Dream,40.0,18.0,190.0,3900.0,Male\n"
    )
    third = import_table(store, changed)
    assert third.created and third.table.n_rows == 345 and third.table.id != t.id
    assert len(list_tables(store)) == 2
    assert get_table(store, t.sha256[:10]) == t
    assert get_table(store, "penguins") is not None


def test_encoding_and_delimiter_are_detected(store: Store, tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("name;city\nJosé;Málaga\nAnn;Köln\n".encode("latin-1"))
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfa\tb\n1\t2\n3\t4\n")
    t1 = import_table(store, latin).table
    assert (t1.encoding, t1.delimiter, t1.columns) == ("latin-1", ";", ("name", "city"))
    assert t1.profile["head"][0] == {"name": "José", "city": "Málaga"}
    t2 = import_table(store, bom).table
    assert (t2.encoding, t2.delimiter, t2.columns) == ("utf-8-sig", "\t", ("a", "b"))


def test_duplicate_columns_are_renamed_with_one_warning(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("a,b,a\n1,2,3\n")
    done = import_table(store, path)
    assert done.table.columns == ("a", "b", "a.1")
    assert len(done.warnings) == 1 and "'a' -> 'a.1'" in done.warnings[0]


def _bad_inputs(tmp_path: Path) -> list[tuple[Path, str, dict[str, float]]]:
    big = tmp_path / "big.csv"
    big.write_text("a\n" + "1\n" * 600_000)
    cases = {
        "empty.csv": ("", "empty file"),
        "header.csv": ("a,b\n", "zero rows"),
        "ragged.csv": ("a,b\n1,2\n3,4\n5,6,7\n8,9\n", "line 4"),
        "binary.csv": ("PK\x03\x04\x00\x00\x14\x00", "binary content"),
        "blank.csv": ("\n\n\n", "empty file"),
    }
    out = [
        (tmp_path / "missing.csv", "no such file", {}),
        (big, "over max_table_mb", {"max_table_mb": 1}),
    ]
    for name, (text, why) in cases.items():
        (tmp_path / name).write_text(text)
        out.append((tmp_path / name, why, {}))
    return out


def test_bad_input_is_one_line_naming_the_file_and_stores_nothing(
    store: Store, tmp_path: Path
) -> None:
    import_table(store, TABLES["tips"])
    before = store.conn.execute("SELECT * FROM tables").fetchall()
    for path, why, kwargs in _bad_inputs(tmp_path):
        with pytest.raises(InputError) as info:
            import_table(store, path, **kwargs)
        message = str(info.value)
        assert "\n" not in message and str(path) in message and why in message, message
    assert store.conn.execute("SELECT * FROM tables").fetchall() == before


def test_all_shared_tables_read(tmp_path: Path) -> None:
    folder = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "csv"
    if not folder.is_dir():
        pytest.skip("../shared/datasets/csv is absent")
    for path in sorted(folder.glob("*.csv")):
        parsed = read_table(path)
        assert parsed.frame.shape[0] > 100 and parsed.encoding == "utf-8", path


def test_cli_import_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.cli.main import main

    db = str(tmp_path / "cli.db")
    assert main(["--db", db, "import", "--table", str(TABLES["tips"]), "--name", "tips"]) == 0
    assert main(["--db", db, "import", "--table", str(TABLES["tips"])]) == 0
    out = capsys.readouterr().out
    assert "table tips: imported (244 rows x 7 columns" in out and "already stored" in out
    assert main(["--db", db, "import", "--table", str(tmp_path / "nope.csv")]) != 0
    assert f"{tmp_path / 'nope.csv'}: no such file" in capsys.readouterr().err
    with Store(db) as store:
        assert [t.name for t in list_tables(store)] == ["tips"]


def test_carriage_return_line_endings(store: Store, tmp_path: Path) -> None:
    old_mac = tmp_path / "cr.csv"
    old_mac.write_bytes(b"a,b,a\r1,2,3\r4,5,6\r")
    windows = tmp_path / "crlf.csv"
    windows.write_bytes(b"x,y\r\n1,2\r\n")
    done = import_table(store, old_mac)
    assert done.table.n_rows == 2 and done.table.columns == ("a", "b", "a.1")
    assert len(done.warnings) == 1
    assert import_table(store, windows).table.columns == ("x", "y")
