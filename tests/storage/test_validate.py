"""The request-body readers refuse wrong types (objects where strings belong) with the field named."""

import pytest

from storage import validate as v
from storage.errors import Kind, Refused


def refused(fn, *args, **kw):
    with pytest.raises(Refused) as err:
        fn(*args, **kw)
    assert err.value.kind is Kind.INVALID and err.value.code == "invalid"
    return err.value.message


def test_text():
    assert v.text({"t": "  hi "}, "t", max_len=5) == "hi"
    assert refused(v.text, {"t": {"$gt": ""}}, "t", max_len=5) == "t: must be a string"
    assert refused(v.text, {"t": ["a"]}, "t", max_len=5) == "t: must be a string"
    assert refused(v.text, {"t": "toolong"}, "t", max_len=5).startswith("t: is longer")
    assert refused(v.text, {}, "t", max_len=5) == "t: is required"
    assert v.text({}, "t", max_len=5, required=False) is None


def test_email_integer_boolean_choice():
    assert v.email({"email": "A@Example.COM"}) == "a@example.com"
    refused(v.email, {"email": "nope"})
    refused(v.email, {"email": {"$ne": None}})
    assert v.integer({"n": 3}, "n", lo=0, hi=5) == 3
    refused(v.integer, {"n": True}, "n", lo=0, hi=5)
    refused(v.integer, {"n": "3"}, "n", lo=0, hi=5)
    refused(v.integer, {"n": 6}, "n", lo=0, hi=5)
    refused(v.boolean, {"b": "true"}, "b")
    assert v.choice({}, "c", ("a", "b"), required=False) is None
    refused(v.choice, {"c": {}}, "c", ("a", "b"), required=False)
    refused(v.choice, {"c": "z"}, "c", ("a", "b"))


def test_when_timezone_url_lists_ids():
    assert v.when({"at": "2030-01-31T18:00:00+01:00"}, "at").isoformat() == "2030-01-31T17:00:00+00:00"
    assert "offset" in refused(v.when, {"at": "2030-01-31T18:00:00"}, "at")
    refused(v.when, {"at": "tomorrow"}, "at")
    assert v.timezone({"timezone": "America/New_York"}) == "America/New_York"
    refused(v.timezone, {"timezone": "../../etc/passwd"})
    refused(v.url, {"u": "ftp://x.example"}, "u")
    assert v.url({"u": "https://x.example/a.m3u8"}, "u") == "https://x.example/a.m3u8"
    assert refused(v.text_list, {"l": ["a", {"$gt": 1}]}, "l", max_items=3, max_len=5).startswith("l[1]:")
    refused(v.text_list, {"l": "a"}, "l", max_items=3, max_len=5)
    assert v.ident("abc_1-2") == "abc_1-2"
    refused(v.ident, {"$gt": ""})
    refused(v.ident, "a/b")
    refused(v.known_fields, {"x": 1, "y": 2}, {"x"})
