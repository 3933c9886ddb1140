"""The suite's own CI rule: a missing requirement skips locally and fails under CI=true."""

from __future__ import annotations

import pytest


def test_a_missing_requirement_fails_under_ci(requirement, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true.*no server here"):
        requirement(False, "no server here")


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_a_missing_requirement_skips_elsewhere(requirement, monkeypatch, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception, match="no server here"):
        requirement(False, "no server here")


def test_a_met_requirement_does_nothing(requirement, monkeypatch):
    monkeypatch.setenv("CI", "true")
    requirement(True, "present")
