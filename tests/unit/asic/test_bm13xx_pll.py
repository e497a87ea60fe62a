"""PLL search (closest frequency, lowest VCO), encodings, ranges per chip, ramping."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.asic.bm13xx import pll
from drivers.asic.bm13xx.chips import get_chip
from drivers.asic.errors import ConfigError

MODELS = ("BM1366", "BM1368", "BM1370", "BM1397")


def all_settings(spec):
    for r in (1, 2):
        for p1 in range(1, 8):
            for p2 in range(1, 8):
                if p1 > p2:
                    for fb in range(spec.fbdiv_min, spec.fbdiv_max + 1):
                        yield pll.PllSetting(fb, r, p1, p2)


@pytest.mark.parametrize("model", MODELS)
@settings(max_examples=25, deadline=None)
@given(frac=st.floats(0.0, 1.0))
def test_search_is_optimal(model, frac):
    spec = get_chip(model)
    lo, hi = pll.frequency_range(spec)
    target = lo + frac * (hi - lo)
    best = pll.find_pll(spec, target)
    assert spec.fbdiv_min <= best.fbdiv <= spec.fbdiv_max
    assert best.postdiv1 > best.postdiv2
    err = abs(best.frequency_mhz - target)
    for s in all_settings(spec):
        e = abs(s.frequency_mhz - target)
        assert e >= err - 1e-9, (s, best)
        if abs(e - err) < 1e-9:
            assert s.vco_mhz >= best.vco_mhz - 1e-9


def test_lowest_vco_wins_among_exact_matches():
    spec = get_chip("BM1370")
    s = pll.find_pll(spec, 525)
    assert s.refdiv == 2 and s.vco_mhz == 2100.0  # refdiv 1 (VCO 4200) also hits 525 exactly


def test_high_vco_sets_vdo():
    spec = get_chip("BM1370")
    s = pll.find_pll(spec, 1200)
    assert s.vco_mhz >= 2400
    assert pll.encode_pll(spec, s)[0] == 0x50
    low = pll.find_pll(spec, 500)
    assert low.vco_mhz < 2400 and pll.encode_pll(spec, low)[0] == 0x40


def test_bm1397_plain_postdiv_and_fixed_vdo():
    spec = get_chip("BM1397")
    s = pll.find_pll(spec, 425)
    assert s.frequency_mhz == 425.0
    value = pll.encode_pll(spec, s)
    assert value[0] == 0x40
    assert value[3] == (s.postdiv1 << 4) | s.postdiv2
    assert pll.decode_pll(spec, value) == s


@pytest.mark.parametrize("model", MODELS)
def test_encode_decode_roundtrip_and_defaults(model):
    spec = get_chip(model)
    for mhz in (pll.RAMP_START_MHZ, spec.default_mhz, spec.default_mhz + 6.25):
        s = pll.find_pll(spec, mhz)
        assert abs(s.frequency_mhz - mhz) < 1.0
        assert pll.decode_pll(spec, pll.encode_pll(spec, s)) == s


@pytest.mark.parametrize(
    ("model", "fb"), [("BM1366", (144, 235)), ("BM1370", (160, 239)), ("BM1397", (60, 200))]
)
def test_ranges_per_chip(model, fb):
    spec = get_chip(model)
    assert (spec.fbdiv_min, spec.fbdiv_max) == fb
    lo, hi = pll.frequency_range(spec)
    assert lo == pytest.approx(25 * fb[0] / (2 * 7 * 6))
    assert hi == pytest.approx(25 * fb[1] / 2)
    with pytest.raises(ConfigError):
        pll.find_pll(spec, lo - 1)
    with pytest.raises(ConfigError):
        pll.find_pll(spec, hi + 1)


def test_ramp_steps():
    assert pll.ramp_steps(56.25, 75) == [62.5, 68.75, 75.0]
    assert pll.ramp_steps(500, 490) == [493.75, 490.0]
    assert pll.ramp_steps(500, 500) == []
    steps = pll.ramp_steps(56.25, 525)
    assert steps[-1] == 525 and len(steps) == 75
    prev = 56.25
    for s in steps:
        assert 0 < s - prev <= 6.25 + 1e-9
        prev = s
    with pytest.raises(ConfigError):
        pll.ramp_steps(1, 2, 0)
