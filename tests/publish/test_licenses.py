"""License parsing and aggregation: strictest wins, NC flagged, unknown → other."""

import pytest

from qagen.publish.licenses import MADMOM_MODELS_LICENSE, aggregate_licenses, parse_license


@pytest.mark.parametrize(("text", "family", "version"), [
    ("CC-BY-NC-SA-3.0", "by-nc-sa", "3.0"),
    ("Attribution-NonCommercial-ShareAlike 3.0 International", "by-nc-sa", "3.0"),
    ("Attribution 4.0 International", "by", "4.0"),
    ("Attribution-NoDerivatives 4.0", "by-nd", "4.0"),
    ("CC-BY-SA-4.0 (caption); audio: YouTube, rights with the uploader", "by-sa", "4.0"),
    ("Creative Commons Attribution-NonCommercial 2.5", "by-nc", "2.5"),
    ("Public Domain Mark 1.0", "cc0", "1.0"),
    ("All rights reserved", "unknown", None),
    (None, "unknown", None),
    ("", "unknown", None),
])
def test_parse_license(text: str | None, family: str, version: str | None) -> None:
    terms = parse_license(text)
    assert (terms.family, terms.version) == (family, version)


def test_hub_ids() -> None:
    assert parse_license("CC-BY-NC-SA-3.0").hub_id == "cc-by-nc-sa-3.0"
    assert parse_license("nonsense").hub_id == "other"
    assert parse_license("CC0").hub_id == "cc0-1.0"


def test_strictest_wins_and_nc_is_flagged() -> None:
    agg = aggregate_licenses(["CC-BY-4.0", "CC-BY-SA-4.0", "Attribution-NonCommercial 4.0"])
    assert agg.hub_id == "cc-by-nc-4.0" and agg.non_commercial and not agg.unknown
    agg = aggregate_licenses(["CC-BY-NC-SA-3.0", MADMOM_MODELS_LICENSE, "CC-BY-4.0"])
    assert agg.hub_id == "cc-by-nc-sa-4.0"  # same family: the later version (3.0 allows it)
    assert agg.inputs["CC-BY-4.0"] == "cc-by-4.0"


def test_commercial_only_inputs_are_not_flagged() -> None:
    agg = aggregate_licenses(["CC-BY-4.0", "Attribution-ShareAlike 4.0 International"])
    assert agg.hub_id == "cc-by-sa-4.0" and not agg.non_commercial


def test_unknown_and_nd_make_the_aggregate_need_a_human() -> None:
    agg = aggregate_licenses(["CC-BY-4.0", None, "proprietary"])
    assert agg.hub_id == "other" and agg.strictest == "cc-by-4.0"
    assert agg.unknown == ["(none)", "proprietary"]
    nd = aggregate_licenses(["CC-BY-NC-ND-4.0", "CC-BY-4.0"])
    assert nd.no_derivatives and nd.non_commercial and nd.hub_id == "cc-by-nc-nd-4.0"
    assert aggregate_licenses([]).hub_id == "other"
