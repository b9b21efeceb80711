"""The public names: each one in ``__all__`` resolves, and type checkers see the lazy ones."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import csv_to_kafka


@pytest.mark.parametrize("name", csv_to_kafka.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(csv_to_kafka, name) is not None


def test_the_lazy_names_are_the_modules_own() -> None:
    from csv_to_kafka import processor
    from csv_to_kafka.verify import VerifyReport

    assert csv_to_kafka.Processor is processor.Processor
    assert csv_to_kafka.RunResult is processor.RunResult
    assert csv_to_kafka.VerifyReport is VerifyReport
    with pytest.raises(AttributeError):
        _ = csv_to_kafka.NoSuchName  # type: ignore[attr-defined]


def test_type_checkers_see_the_lazy_names_typed(tmp_path: Path) -> None:
    """``py.typed`` promises types: ``csv_to_kafka.Processor`` must not be ``object`` to mypy."""
    from mypy import api

    user = tmp_path / "user.py"
    user.write_text(
        textwrap.dedent(
            """
            import csv_to_kafka
            reveal_type(csv_to_kafka.Processor)
            reveal_type(csv_to_kafka.VerifyReport)
            """
        )
    )
    out, err, _ = api.run([str(user), "--cache-dir", str(tmp_path / "cache"), "--no-error-summary"])
    assert "csv_to_kafka.processor.Processor" in out, out + err
    assert "csv_to_kafka.verify.VerifyReport" in out, out + err
    assert "builtins.object" not in out, out
