"""Invented identity-document numbers in each country's format, with the real check digits
where a format has one (so validators downstream see plausible numbers). Every number comes
from the generator's random source; none is looked up anywhere."""

from __future__ import annotations

import random
import string
import unicodedata
from collections.abc import Callable
from datetime import date

_DIGITS = string.digits
_UPPER = string.ascii_uppercase


def _d(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_DIGITS) for _ in range(n))


def _l(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_UPPER) for _ in range(n))


def _ascii(text: str) -> str:
    return "".join(
        c for c in unicodedata.normalize("NFKD", text.upper()) if c.isascii() and c.isalpha()
    )


def passport_number(rng: random.Random, state: str) -> str:
    """A passport number in the state's usual shape (letters and digits)."""
    shapes: dict[str, Callable[[], str]] = {
        "MX": lambda: rng.choice("GN") + _d(rng, 8),
        "US": lambda: _d(rng, 9),
        "CA": lambda: _l(rng, 2) + _d(rng, 6),
        "BR": lambda: _l(rng, 2) + _d(rng, 6),
        "AR": lambda: "AA" + _l(rng, 1) + _d(rng, 6),
        "CO": lambda: "A" + _l(rng, 1) + _d(rng, 6),
        "CL": lambda: "F" + _d(rng, 8),
        "PE": lambda: _d(rng, 9),
        "HT": lambda: "R" + _l(rng, 1) + _d(rng, 7),
        "JM": lambda: "A" + _d(rng, 7),
        "BB": lambda: "RB" + _d(rng, 6),
    }
    shape = shapes.get(state)
    return shape() if shape else _l(rng, 1) + _d(rng, 7)


def _curp(rng: random.Random, given: str, family: str, dob: date, sex: str) -> str:
    """A Mexican CURP built from the person's (invented) names and birth date, check digit
    included."""
    surnames = ([*_ascii(family).split(), "X", "X"])[:2]
    first = (_ascii(given).split() or ["X"])[0]
    p = surnames[0] or "X"
    vowel = next((c for c in p[1:] if c in "AEIOU"), "X")
    consonants = [
        next((c for c in w[1:] if c not in "AEIOU"), "X") for w in (p, surnames[1], first)
    ]
    body = (
        p[0]
        + vowel
        + (surnames[1] or "X")[0]
        + first[0]
        + dob.strftime("%y%m%d")
        + ("M" if sex == "FEMALE" else "H")
        + rng.choice(["CS", "DF", "JC", "NL", "OC", "GR", "VZ", "PL", "BC", "CH"])
        + "".join(consonants)
        + ("0" if dob.year < 2000 else "A")
    )
    alphabet = "0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ"
    total = sum(alphabet.index(c) * (18 - i) for i, c in enumerate(body))
    return body + str((10 - total % 10) % 10)


def _cpf(rng: random.Random) -> str:
    digits = [int(c) for c in _d(rng, 9)]
    for weight in (10, 11):
        s = sum(d * (weight - i) for i, d in enumerate(digits))
        digits.append((s * 10 % 11) % 10)
    t = "".join(map(str, digits))
    return f"{t[:3]}.{t[3:6]}.{t[6:9]}-{t[9:]}"


def _run(rng: random.Random) -> str:
    body = str(rng.randint(10_000_000, 26_999_999))
    s = sum(int(c) * (2 + i % 6) for i, c in enumerate(reversed(body)))
    check = {10: "K", 11: "0"}.get(11 - s % 11, str(11 - s % 11))
    return f"{int(body):,}".replace(",", ".") + "-" + check


def _ec_cedula(rng: random.Random) -> str:
    digits = [int(c) for c in f"{rng.randint(1, 24):02d}" + str(rng.randint(0, 5)) + _d(rng, 6)]
    s = 0
    for i, d in enumerate(digits):
        v = d * (2 if i % 2 == 0 else 1)
        s += v - 9 if v > 9 else v
    digits.append((10 - s % 10) % 10)
    return "".join(map(str, digits))


def _dui(rng: random.Random) -> str:
    body = _d(rng, 8)
    s = sum(int(c) * (9 - i) for i, c in enumerate(body))
    return f"{body}-{(10 - s % 10) % 10}"


def _uy_ci(rng: random.Random) -> str:
    body = f"{rng.randint(1_000_000, 6_999_999)}"
    s = sum(int(c) * w for c, w in zip(body, (2, 9, 8, 7, 6, 3, 4), strict=True))
    return f"{body[0]}.{body[1:4]}.{body[4:]}-{(10 - s % 10) % 10}"


def national_id_number(
    rng: random.Random, state: str, given: str, family: str, dob: date, sex: str
) -> str:
    """A national identity number in the state's format."""
    shapes: dict[str, Callable[[], str]] = {
        "MX": lambda: _curp(rng, given, family, dob, sex),
        "BR": lambda: _cpf(rng),
        "CL": lambda: _run(rng),
        "EC": lambda: _ec_cedula(rng),
        "SV": lambda: _dui(rng),
        "UY": lambda: _uy_ci(rng),
        "AR": lambda: str(rng.randint(20_000_000, 48_999_999)),
        "CO": lambda: str(rng.randint(1_000_000_000, 1_199_999_999)),
        "PE": lambda: _d(rng, 8),
        "PY": lambda: str(rng.randint(1_000_000, 7_999_999)),
        "CR": lambda: f"{rng.randint(1, 7)}-{_d(rng, 4)}-{_d(rng, 4)}",
        "PA": lambda: f"{rng.randint(1, 9)}-{rng.randint(100, 999)}-{_d(rng, 4)}",
        "GT": lambda: f"{_d(rng, 4)} {_d(rng, 5)} {rng.randint(1, 22):02d}{rng.randint(1, 30):02d}",
        "HN": lambda: f"{rng.randint(1, 18):02d}{rng.randint(1, 28):02d}-{dob.year}-{_d(rng, 5)}",
        "HT": lambda: _d(rng, 10),
        "JM": lambda: _d(rng, 9),
        "BB": lambda: dob.strftime("%y%m%d") + "-" + _d(rng, 4),
        "BZ": lambda: _d(rng, 9),
    }
    shape = shapes.get(state)
    return shape() if shape else _l(rng, 2) + _d(rng, 8)


def plate(rng: random.Random, state: str) -> str:
    """A vehicle registration plate in the state's usual shape."""
    shapes: dict[str, Callable[[], str]] = {
        "MX": lambda: f"{_l(rng, 3)}-{_d(rng, 3)}-{_l(rng, 1)}",
        "US": lambda: f"{_d(rng, 1)}{_l(rng, 3)}{_d(rng, 3)}",
        "BR": lambda: f"{_l(rng, 3)}{_d(rng, 1)}{_l(rng, 1)}{_d(rng, 2)}",
        "AR": lambda: f"{_l(rng, 2)} {_d(rng, 3)} {_l(rng, 2)}",
        "CO": lambda: f"{_l(rng, 3)} {_d(rng, 3)}",
        "GT": lambda: f"P {_d(rng, 3)}{_l(rng, 3)}",
        "CL": lambda: f"{_l(rng, 4)}{_d(rng, 2)}",
    }
    shape = shapes.get(state)
    return shape() if shape else f"{_l(rng, 3)} {_d(rng, 4)}"
