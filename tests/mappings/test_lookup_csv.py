"""Lookup CSV upload: Windows-1252 files, common header names, errors that name the line."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import io

import pytest
from django.urls import reverse

from mappings.services_lookups import lookup_csv_decode, lookup_import_csv
from migration_planner.lib.errors import ApplicationError
from tests.mappings.workbench_fixtures import demo_files, demo_plan, demo_systems  # noqa: F401

pytestmark = pytest.mark.django_db


def test_cp1252_upload_is_decoded_like_file_staging(client_for, analyst, demo_plan):
    lookup = demo_plan.lookups.get(name="us-states")
    url = reverse("mappings:lookup_upload", kwargs={"slug": demo_plan.slug, "uuid": lookup.uuid})
    upload = io.BytesIO("code,label\nQC,Québec\nMX,México – Ciudad\n".encode("cp1252"))
    upload.name = "states.csv"
    response = client_for(analyst).post(url, {"file": upload}, follow=True)
    assert "2 rows loaded" in response.content.decode()
    assert dict(lookup.entries.values_list("key", "value")) == {
        "QC": "Québec",
        "MX": "México – Ciudad",
    }


@pytest.mark.parametrize(
    "header,row",
    [
        ("key,value", "A,Active"),
        ("Code,Label", "A,Active"),
        ("value,key", "Active,A"),
        ("source,target,comment", "A,Active,legacy"),
    ],
)
def test_common_header_names_are_accepted(demo_plan, analyst, header, row):
    lookup = demo_plan.lookups.get(name="account-status")
    lookup_import_csv(lookup=lookup, user=analyst, text=f"{header}\n{row}\n")
    assert dict(lookup.entries.values_list("key", "value")) == {"A": "Active"}


def test_unknown_header_says_which_names_work(demo_plan, analyst):
    lookup = demo_plan.lookups.get(name="account-status")
    with pytest.raises(ApplicationError, match="Line 1: the header “a,b” names no key"):
        lookup_import_csv(lookup=lookup, user=analyst, text="a,b\nA,Active\n")


def test_errors_name_the_physical_line_after_a_multiline_cell(demo_plan, analyst):
    lookup = demo_plan.lookups.get(name="account-status")
    text = 'key,value\nA,"two\nlines"\n,empty key\n'
    with pytest.raises(ApplicationError, match="Line 4: the key is empty"):
        lookup_import_csv(lookup=lookup, user=analyst, text=text)


def test_undecodable_bytes_name_byte_and_line():
    with pytest.raises(ApplicationError, match=r"byte 15 \(line 3\): cannot decode 0xff"):
        lookup_csv_decode(raw="key,value\nA,é\n".encode() + b"\xff\xfe\x80")
