"""The demo data's profile: table sizes, the dirt injected per column and its share, the US
state names, and the word tables values are drawn from (data, no code paths)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

SOURCE_TABLES = ("customers", "contacts", "orders")
TARGET_TABLES = ("accounts", "contacts", "orders")
CHILD_FACTOR = {"customers": 1, "contacts": 2, "orders": 3}
BLOCK_ROWS = 200_000
FIRST_ID = 1001
MIN_ROWS = 50

DIRT_PROFILE: dict[str, float] = {
    "customers.duplicate_row": 0.01,  # same data as another row, different Customer_ID
    "customers.Cust_Name.padded": 0.03,  # leading / trailing / double inner spaces
    "customers.Cust_Name.upper": 0.03,  # "ACME LOGISTICS CORP."
    "customers.Cust_Name.lower_dot": 0.02,  # "acme logistics corp."
    "customers.Cust_Name.over_80": 0.005,
    "customers.Cust_Name.null": 0.003,
    "customers.Address_Line2.null": 0.55,
    "customers.Address_Line2.empty": 0.15,
    "customers.City.null": 0.01,
    "customers.City.over_40": 0.002,
    "customers.State_Code.lowercase": 0.02,  # "ca"
    "customers.State_Code.invalid": 0.015,  # "XX", "C", "ZZ", ...
    "customers.State_Code.null": 0.005,
    "customers.Zip_Code.zip4": 0.15,  # rest: 5 digits
    "customers.Zip_Code.bad": 0.01,
    "customers.Zip_Code.null": 0.005,
    # phones: rest "555-123-4567"
    "customers.Phone_Number.paren": 0.25,  # "(555) 123-4567"
    "customers.Phone_Number.dotted": 0.10,  # "555.123.4567"
    "customers.Phone_Number.digits": 0.10,  # "5551234567"
    "customers.Phone_Number.plus1": 0.08,  # "+1 555 123 4567"
    "customers.Phone_Number.one_dash": 0.07,  # "1-555-123-4567"
    "customers.Phone_Number.extension": 0.03,  # "555-123-4567 x204"
    "customers.Phone_Number.invalid": 0.03,  # "12345", ...
    "customers.Phone_Number.null": 0.04,
    "customers.Email_Address.messy": 0.04,  # upper case, half of them space-padded
    "customers.Email_Address.invalid": 0.03,  # "john@", "no-at-sign.com", "a@b", ...
    "customers.Email_Address.duplicate": 0.02,  # another customer's e-mail
    "customers.Email_Address.over_80": 0.002,
    "customers.Email_Address.null": 0.02,
    # dates: rest "2018-01-15 10:30"
    "customers.Creation_Date.us": 0.15,  # "01/15/2018"
    "customers.Creation_Date.eu": 0.10,  # "15.01.2018"
    "customers.Creation_Date.iso_t": 0.10,  # "2018-01-15T10:30:00"
    "customers.Creation_Date.month_name": 0.08,  # "Jan 15 2018"
    "customers.Creation_Date.impossible": 0.02,  # "2021-02-30", "13/45/2019", ...
    "customers.Creation_Date.empty": 0.01,
    "customers.Creation_Date.null": 0.02,
    # status: rest "1"
    "customers.Status.inactive_0": 0.15,
    "customers.Status.active_A": 0.06,
    "customers.Status.inactive_I": 0.04,
    "customers.Status.unmapped_2": 0.04,
    "customers.Status.null": 0.001,
    "customers.Legacy_Notes.null": 0.40,  # rest: short notes (some with newline/tab/backslash)
    "customers.Legacy_Notes.over_32000": 0.0002,
    "contacts.orphan": 0.005,  # Customer_ID of no customer
    "contacts.parent_null": 0.001,
    "contacts.First_Name.padded": 0.03,
    "contacts.First_Name.upper": 0.03,
    "contacts.First_Name.over_40": 0.002,
    "contacts.First_Name.null": 0.01,
    "contacts.Last_Name.null": 0.005,  # target last_name is NOT NULL
    "contacts.Last_Name.over_80": 0.002,
    "contacts.Email.messy": 0.04,
    "contacts.Email.invalid": 0.03,
    "contacts.Email.duplicate": 0.02,
    "contacts.Email.over_80": 0.002,
    "contacts.Email.null": 0.05,
    "contacts.Phone.paren": 0.25,
    "contacts.Phone.dotted": 0.10,
    "contacts.Phone.digits": 0.10,
    "contacts.Phone.plus1": 0.08,
    "contacts.Phone.one_dash": 0.07,
    "contacts.Phone.extension": 0.03,
    "contacts.Phone.invalid": 0.03,
    "contacts.Phone.null": 0.10,
    "contacts.Title.null": 0.30,
    "contacts.Title.over_128": 0.001,
    "orders.orphan": 0.003,  # Contact_ID of no contact
    "orders.parent_null": 0.001,
    # dates: rest "2024-03-05"
    "orders.Order_Date.us": 0.10,
    "orders.Order_Date.eu": 0.05,
    "orders.Order_Date.iso_t": 0.05,
    "orders.Order_Date.month_name": 0.05,
    "orders.Order_Date.impossible": 0.01,
    "orders.Order_Date.empty": 0.005,
    "orders.Order_Date.null": 0.01,
    # amounts: rest "1234.50"
    "orders.Total_Amount.dollar_sign": 0.15,  # "$1,234.50"
    "orders.Total_Amount.thousands": 0.05,  # "1,234.50"
    "orders.Total_Amount.one_decimal": 0.05,  # "1234.5"
    "orders.Total_Amount.negative": 0.01,
    "orders.Total_Amount.invalid": 0.01,  # "N/A", "", "TBD", "12.34.56"
    "orders.Total_Amount.overflow": 0.001,  # does not fit NUMERIC(12,2)
    "orders.Total_Amount.null": 0.02,
    "orders.Currency.lowercase": 0.04,  # rest "USD"
    "orders.Currency.other": 0.03,  # EUR, GBP, CAD
    "orders.Currency.invalid": 0.01,  # "US$", "DOLLARS", "$"
    "orders.Currency.null": 0.02,
    "orders.Status.lowercase": 0.05,  # rest OPEN / SHIPPED / CLOSED / CANCELLED
    "orders.Status.unknown": 0.01,
    "orders.Status.null": 0.01,
}

US_STATES: dict[str, str] = {
    "AL": "Alabama",
    "AK": "Alaska",
    "AZ": "Arizona",
    "AR": "Arkansas",
    "CA": "California",
    "CO": "Colorado",
    "CT": "Connecticut",
    "DE": "Delaware",
    "DC": "District of Columbia",
    "FL": "Florida",
    "GA": "Georgia",
    "HI": "Hawaii",
    "ID": "Idaho",
    "IL": "Illinois",
    "IN": "Indiana",
    "IA": "Iowa",
    "KS": "Kansas",
    "KY": "Kentucky",
    "LA": "Louisiana",
    "ME": "Maine",
    "MD": "Maryland",
    "MA": "Massachusetts",
    "MI": "Michigan",
    "MN": "Minnesota",
    "MS": "Mississippi",
    "MO": "Missouri",
    "MT": "Montana",
    "NE": "Nebraska",
    "NV": "Nevada",
    "NH": "New Hampshire",
    "NJ": "New Jersey",
    "NM": "New Mexico",
    "NY": "New York",
    "NC": "North Carolina",
    "ND": "North Dakota",
    "OH": "Ohio",
    "OK": "Oklahoma",
    "OR": "Oregon",
    "PA": "Pennsylvania",
    "RI": "Rhode Island",
    "SC": "South Carolina",
    "SD": "South Dakota",
    "TN": "Tennessee",
    "TX": "Texas",
    "UT": "Utah",
    "VT": "Vermont",
    "VA": "Virginia",
    "WA": "Washington",
    "WV": "West Virginia",
    "WI": "Wisconsin",
    "WY": "Wyoming",
}


# ---------------------------------------------------------------- generation helpers

_T2 = np.array([f"{i:02d}" for i in range(100)], dtype=object)
_T3 = np.array([f"{i:03d}" for i in range(1000)], dtype=object)
_T4 = np.array([f"{i:04d}" for i in range(10000)], dtype=object)
Maker = Callable[[np.ndarray], Any]


def _words(text: str) -> np.ndarray:
    return np.array(text.split("|"), dtype=object)


_MONTHS = _words("Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec")


_COMPANY = _words(
    "Acme|Globex|Initech|Umbrella|Stark|Wayne|Wonka|Hooli|Vandelay|Soylent|Tyrell|"
    "Cyberdyne|Oceanic|Sterling|Pied Piper|Dunder|Prestige|Monarch|Blue Sun|"
    "Aperture|Black Mesa|O'Malley|Northwind|Contoso|Fabrikam|Litware|Proseware|"
    'Big "W"|Gekko|Massive Dynamic|Virtucon|Duff|Krusty|Nakatomi|Wernham|'
    "Bluth|Los Pollos|Sirius|Zorg|Rekall"
)
_KIND = _words(
    "Industries|Logistics|Foods|Systems|Consulting|Labs|Trading|Holdings|Supply|Motors|Media|Health"
)
_SUFFIX = _words(" Corp.| Inc.| LLC| Ltd.| Co.| Group|")
_SLUG = np.array([re.sub(r"[^a-z]", "", w.lower()) for w in _COMPANY], dtype=object)
_KSLUG = np.array([w.lower() for w in _KIND], dtype=object)
_LONG_TAIL = (
    "International Holdings and Consolidated Trading Company of North America and "
    "Affiliated Subsidiaries Worldwide (formerly Known as the Old Legacy Name)"
)
_STREET = _words(
    "Main|Oak|Pine|Maple|Cedar|Elm|Washington|Lake|Hill|Park|Sunset|Broadway|"
    "Market|Church|Highland|River|Spring|Willow|Lincoln|Jefferson"
)
_STREET_KIND = _words(" St| Ave| Rd| Blvd| Ln| Dr| Way| Ct| St.| Avenue")
_UNIT = _words("Suite |Apt |Floor |Unit |Bldg |PO Box ")
_CITY_STATE = [
    c.split(",")
    for c in _words(
        "Anytown,CA|Los Angeles,CA|San Diego,CA|New York,NY|Buffalo,NY|Chicago,IL|Houston,TX|"
        "Austin,TX|Dallas,TX|Phoenix,AZ|Philadelphia,PA|Pittsburgh,PA|Jacksonville,FL|Miami,FL|"
        "Columbus,OH|Cleveland,OH|Charlotte,NC|Indianapolis,IN|Seattle,WA|Spokane,WA|Denver,CO|"
        "Washington,DC|Boston,MA|Nashville,TN|Detroit,MI|Portland,OR|Las Vegas,NV|Memphis,TN|"
        "Louisville,KY|Baltimore,MD|Milwaukee,WI|Albuquerque,NM|Atlanta,GA|Omaha,NE|Boise,ID|"
        "Anchorage,AK|Honolulu,HI|Burlington,VT|Cheyenne,WY|Sioux Falls,SD"
    )
]
_CITY = np.array([c for c, _ in _CITY_STATE], dtype=object)
_CITY_CODE = np.array([s for _, s in _CITY_STATE], dtype=object)
_LONG_CITY = [
    "Rancho Santa Margarita Heights North Village District",
    "Llanfairpwllgwyngyll Township of Upper Saint Clair West",
]
_FIRST = _words(
    "James|Mary|John|Patricia|Robert|Jennifer|Michael|Linda|William|Elizabeth|David|"
    "Barbara|Richard|Susan|Joseph|Jessica|Thomas|Sarah|Carlos|Karen|Wei|Aisha|Omar|"
    "Priya|Sven|Chloé|Zoë|Mateo|Yuki|Fatima"
)
_LAST = _words(
    "Smith|Johnson|Williams|Brown|Jones|Garcia|Miller|Davis|Rodriguez|Martinez|"
    "Hernandez|Lopez|Gonzalez|Wilson|Anderson|O'Brien|Nguyen|Kim|Patel|Müller|"
    "Van der Berg|Lee|Walker|Young|Allen|King|Wright|Scott|Green|Baker"
)
_FSLUG = np.array([re.sub(r"[^a-z]", "", w.lower()) for w in _FIRST], dtype=object)
_LSLUG = np.array([re.sub(r"[^a-z]", "", w.lower()) for w in _LAST], dtype=object)
_MAIL_DOMAIN = _words("gmail.com|yahoo.com|outlook.com|example.com|aol.com|hotmail.com")
_MAILBOX = _words("info|sales|contact|office|billing|accounts")
_LONG_LOCAL = "accounts.payable.department.northern.region.headquarters.attention."
_TITLE = _words(
    "CEO|CFO|Owner|Purchasing Manager|Office Manager|Accountant|Sales Rep|"
    "VP Operations|IT Director|Buyer|Assistant|Controller"
)
_LONG_TITLE = (
    "Senior Executive Vice President of Strategic Procurement, Vendor Relations, "
    "Logistics Coordination and Regional Operational Excellence (Acting, Interim)"
)
_NOTES = _words(
    "Important client|Prefers e-mail contact.|Net 30 terms|Credit hold lifted 2020|"
    "Called 2019-03-01;\nwill renew in Q3.|See paper file #4471|"
    "Migrated from C:\\legacy\\export\\crm.dbf|VIP\tdo not call before 10am|"
    'Duplicate? check with sales|"Key account" per J. Smith'
)
_LONG_NOTES = [
    ("Call log: customer asked for a callback about invoice 4471. " * 560)[:33_000],
    ("Legacy import note, repeated by a faulty batch job. " * 700)[:36_400],
]
_ORDER_STATUS = _words("OPEN|SHIPPED|CLOSED|CANCELLED")
