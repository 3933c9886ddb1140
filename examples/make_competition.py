"""Generate the small synthetic Kaggle-style competition "loan-default".

Run from the repository root:

    python examples/make_competition.py

It (re)writes examples/loan-default/{train,test,sample_submission}.csv.
Pure standard library with a fixed seed, so every run produces byte-identical
files. The columns are chosen to exercise an ingest pipeline: messy header
names, ints and floats with missing values, categorical strings, a Yes/No
column, an ISO date, and a binary target "Default" (train only) that depends
on the features.
"""

import csv
import math
import random
from datetime import date, timedelta
from pathlib import Path

SEED = 20240601
N_TRAIN = 1000
N_TEST = 400
OUT_DIR = Path(__file__).resolve().parent / "loan-default"

COLUMNS = [
    "Id",
    "Age",
    "Annual Income ($)",
    "Loan Amount",
    "Term",
    "Interest Rate",
    "Credit Score",
    "EmploymentLength",
    "home.ownership",
    "Loan Purpose",
    "Region",
    "Has Cosigner",
    "Application Date",
]
TARGET = "Default"

HOME = ["RENT", "MORTGAGE", "OWN", "OTHER"]
PURPOSES = ["debt_consolidation", "credit_card", "home_improvement", "car", "medical", "education", "small_business"]
REGIONS = ["Northeast", "Midwest", "South", "West"]
FIRST_DATE = date(2018, 1, 1)


def maybe(rng, value, p_missing):
    """Return value, or "" (a missing cell) with probability p_missing."""
    return "" if rng.random() < p_missing else value


def make_row(rng, row_id):
    age = rng.randint(21, 70)
    income = round(math.exp(rng.gauss(11.0, 0.5)), 2)  # median ~60k
    loan = int(round(rng.uniform(1_000, 40_000) / 250) * 250)
    term = rng.choices([36, 60], weights=[0.7, 0.3])[0]
    score = max(300, min(850, int(rng.gauss(690, 60))))
    rate = round(max(5.0, 28.0 - (score - 300) * 0.035 + rng.gauss(0, 2.0) + (1.5 if term == 60 else 0.0)), 2)
    emp = min(max(age - 18, 0), rng.choices(range(0, 31), k=1)[0])
    home = rng.choices(HOME, weights=[0.40, 0.40, 0.17, 0.03])[0]
    purpose = rng.choices(PURPOSES, weights=[35, 25, 12, 10, 7, 6, 5])[0]
    region = rng.choice(REGIONS)
    cosigner = rng.random() < 0.15
    applied = FIRST_DATE + timedelta(days=rng.randrange(6 * 365))

    # Probability of default: a logistic function of the features plus noise.
    logit = (
        -1.9
        + 2.5 * (loan / income - 0.2)
        - 0.012 * (score - 690)
        + 0.08 * (rate - 14)
        - 0.04 * emp
        + (0.5 if home == "RENT" else 0.0)
        + (0.8 if purpose == "small_business" else 0.0)
        + (0.3 if term == 60 else 0.0)
        - (0.7 if cosigner else 0.0)
    )
    default = int(rng.random() < 1 / (1 + math.exp(-logit)))

    row = [
        row_id,
        age,
        maybe(rng, f"{income:.2f}", 0.04),
        loan,
        f"{term} months",
        f"{rate:.2f}",
        maybe(rng, score, 0.03),
        maybe(rng, emp, 0.06),
        home,
        maybe(rng, purpose, 0.02),
        region,
        "Yes" if cosigner else "No",
        applied.isoformat(),
    ]
    return row, default


def write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def main():
    rng = random.Random(SEED)
    OUT_DIR.mkdir(parents=True, exist_ok=True)

    train, test = [], []
    for i in range(1, N_TRAIN + N_TEST + 1):  # Ids 1..1400, unique overall
        row, default = make_row(rng, i)
        if i <= N_TRAIN:
            train.append(row + [default])
        else:
            test.append(row)

    write_csv(OUT_DIR / "train.csv", COLUMNS + [TARGET], train)
    write_csv(OUT_DIR / "test.csv", COLUMNS, test)
    write_csv(OUT_DIR / "sample_submission.csv", ["Id", TARGET], [[row[0], 0] for row in test])

    rate = sum(r[-1] for r in train) / len(train)
    print(f"wrote {OUT_DIR}: train {len(train)} rows (default rate {rate:.1%}), test {len(test)} rows")


if __name__ == "__main__":
    main()
