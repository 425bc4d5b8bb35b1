#!/usr/bin/env python3
"""Writes the MaxMind DB fixtures of galaxy-geoip's tests.

The fixtures are committed, so running the tests needs neither this script nor the
network. Run it again only to change them:

    pip install mmdb-writer          # pulls netaddr
    python3 scripts/make-test-mmdb.py [OUT_DIR]

OUT_DIR defaults to galaxy-adapters/geoip/tests/data. Written there:

- test-country.mmdb: a small IPv6 database (IPv4 networks reachable too) shaped like
  GeoLite2-Country, with a few City-shaped and odd records (see NETWORKS);
- test-country-alt.mmdb: the same networks with other codes, to test reloading;
- test-country-corrupt.mmdb: the first half of test-country.mmdb (no metadata);
- test-country-damaged.mmdb: test-country.mmdb with the end of its data section
  overwritten by garbage, metadata intact (passes a metadata check, fails verification).

The build epoch is fixed so the files are byte-for-byte reproducible.
"""

import os
import sys

from mmdb_writer import MMDBWriter
from netaddr import IPSet

# Fixed so that regenerating the fixtures changes no bytes: 2026-01-01T00:00:00Z.
BUILD_EPOCH = 1767225600

# Bytes of the data section overwritten in the damaged fixture.
DAMAGE = 64


class FixedEpochWriter(MMDBWriter):
    """An MMDBWriter whose metadata carries BUILD_EPOCH instead of the current time."""

    def _build_meta(self):
        meta = super()._build_meta()
        meta["build_epoch"] = BUILD_EPOCH
        return meta


def country(code, name):
    """A Country-shaped record: country and registered country, as GeoLite2 has them."""
    return {
        "continent": {"code": "EU", "names": {"en": "Europe"}},
        "country": {"iso_code": code, "names": {"en": name}},
        "registered_country": {"iso_code": code, "names": {"en": name}},
    }


def city(code, country_name, city_name):
    """A City-shaped record: a city and location besides the country."""
    record = country(code, country_name)
    record["city"] = {"names": {"en": city_name}}
    record["location"] = {"latitude": 51.75, "longitude": -1.25, "time_zone": "Europe/London"}
    return record


# (network, record in the main database, record in the alternative database)
NETWORKS = [
    ("81.2.69.0/24", country("GB", "United Kingdom"), country("FR", "France")),
    ("2.125.160.0/24", city("GB", "United Kingdom", "Boxford"), city("DE", "Germany", "Berlin")),
    ("175.16.199.0/24", country("CN", "China"), country("KR", "South Korea")),
    ("2001:218::/32", country("JP", "Japan"), country("US", "United States")),
    ("2a02:ff40::/32", country("SE", "Sweden"), country("NO", "Norway")),
    # Satellite / anonymous providers: no country, only the registered country.
    (
        "89.160.20.0/24",
        {"registered_country": {"iso_code": "SE", "names": {"en": "Sweden"}}},
        {"registered_country": {"iso_code": "FI", "names": {"en": "Finland"}}},
    ),
    # A record with a code that is no ISO 3166-1 alpha-2 code: must read as unknown.
    ("198.51.0.0/24", {"country": {"iso_code": "XYZ"}}, {"country": {"iso_code": ""}}),
    # A record with no country at all (e.g. an anycast network).
    ("1.1.1.0/24", {"continent": {"code": "OC"}}, {"continent": {"code": "OC"}}),
    # Private ranges present in the data must still read as unknown without a lookup.
    ("10.0.0.0/8", country("US", "United States"), country("US", "United States")),
]


def write(path, column, description):
    writer = FixedEpochWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="Galaxy-Test-Country",
        languages=["en"],
        description=description,
    )
    for network, *records in NETWORKS:
        writer.insert_network(IPSet([network]), records[column])
    writer.to_db_file(path)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    default = os.path.join(root, "galaxy-adapters", "geoip", "tests", "data")
    out = sys.argv[1] if len(sys.argv) > 1 else default
    os.makedirs(out, exist_ok=True)

    main_db = os.path.join(out, "test-country.mmdb")
    write(main_db, 0, "Galaxy test database (main)")
    write(os.path.join(out, "test-country-alt.mmdb"), 1, "Galaxy test database (alternative)")

    with open(main_db, "rb") as f:
        data = f.read()
    with open(os.path.join(out, "test-country-corrupt.mmdb"), "wb") as f:
        f.write(data[: len(data) // 2])

    # Keep the search tree and the metadata (after the marker); overwrite the end of the
    # data section, where the last records are, with bytes that decode to nothing valid.
    marker = data.rindex(b"\xab\xcd\xefMaxMind.com")
    damaged = data[: marker - DAMAGE] + b"\xff" * DAMAGE + data[marker:]
    with open(os.path.join(out, "test-country-damaged.mmdb"), "wb") as f:
        f.write(damaged)

    for name in sorted(os.listdir(out)):
        print(f"{os.path.join(out, name)}: {os.path.getsize(os.path.join(out, name))} bytes")


if __name__ == "__main__":
    main()
