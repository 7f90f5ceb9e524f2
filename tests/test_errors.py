import pytest

from datastory.errors import DataError, DatastoryError


def test_message_names_file_row_column_and_fix():
    err = DataError("amount is not a number: 'abc'", file="data/raw/x.csv", row=17, column="amount",
                    fix="correct or remove that row")
    text = str(err)
    assert text.startswith("data/raw/x.csv, row 17, column 'amount': amount is not a number")
    assert text.endswith("fix: correct or remove that row")
    assert isinstance(err, DatastoryError)


def test_message_without_location():
    assert str(DatastoryError("plain")) == "plain"


def test_is_raisable_and_catchable_as_base():
    with pytest.raises(DatastoryError):
        raise DataError("x", column="c")


def test_a_record_apart_from_its_line_names_both():
    err = DataError("bad", file="x.csv", row=9, record=7, column="amount")
    assert str(err).startswith("x.csv, line 9 (record 7), column 'amount': bad")
    assert str(DataError("bad", file="x.csv", row=9, record=9)).startswith("x.csv, row 9: bad")
