"""A Kaggle-style competition whose names are hostile: SQL in file and column names, reserved words,
quotes, semicolons, spaces and non-ASCII. Every engine must load it as data, never as SQL."""

from __future__ import annotations

from pathlib import Path

HOSTILE_COLUMNS = {
    "id": "id",
    "select": "select",
    "from": "from",
    "order": "order",
    "qualify": "qualify",
    '"quoted"': "quoted",
    "semi;colon": "semi_colon",
    "with space": "with_space",
    "Größe €": "grosse",
    "Robert'); DROP TABLE students;--": "robert_drop_table_students",
    "target": "target",
}
SQL_VALUE = "'); DROP TABLE raw.train; --"
HOSTILE_FILE = "x'; drop table raw.train; --.csv"


def csv_line(values) -> str:
    return ",".join('"' + str(v).replace('"', '""') + '"' for v in values) + "\n"


def write_hostile_competition(folder: Path, keywords: list[str] = ()) -> Path:
    """train.csv (6 rows), test.csv (3 rows, no target), a file named with SQL, and
    keywords.csv with one column per name in ``keywords``."""
    folder.mkdir(parents=True, exist_ok=True)
    names = list(HOSTILE_COLUMNS)
    train = [[i, i, SQL_VALUE, i, i, 'say "hi"', "a;b", "x y", "ä", i, i % 2] for i in range(6)]
    test = [[i, i, SQL_VALUE, i, i, "q", "c", "d", "é", i] for i in range(6, 9)]
    (folder / "train.csv").write_text(csv_line(names) + "".join(map(csv_line, train)), encoding="utf-8")
    (folder / "test.csv").write_text(csv_line(names[:-1]) + "".join(map(csv_line, test)), encoding="utf-8")
    if keywords:
        (folder / "keywords.csv").write_text(",".join(keywords) + "\n" + ",".join("1" for _ in keywords) + "\n")
    (folder / HOSTILE_FILE).write_text("a\n1\n")
    return folder
