"""The strict SPEC patterns: the SPEC's own examples, its named dirt, and their independence
from the parsers they are a second opinion on."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from movierec.logformat import strict

SPEC_EXAMPLES = [
    "2025-10-17T01:38:54,220358,GET /data/m/padre+nuestro+2007/90.mpg",
    "2025-10-17T01:39:12,220358,GET /rate/padre+nuestro+2007=4",
    "2022-02-08T12:02:38.164729,141977,recommendation request team04.example.edu:8082, "
    "status 200, result: mona+lisa+1986, interstellar+2014, our+paradise+2011, 89 ms",
    "2021-03-01T10:11:12.5,284507,recommendation request team17.example.edu:8082, status 0, "
    "result: java.util.concurrent.TimeoutException: Request timeout to "
    "team17.example.edu/10.0.0.5:8082 after 800 ms, 815 ms",
    "2022-11-14T12:24,5,GET /data/m/the+rock+1996/0.mpg",  # zero seconds dropped
    "2022-11-14T12:24,5,GET /data/m/m*a*s*h+1970/0.mpg",
    "2022-11-14T12:24,5,GET /data/m/+la+mode+1993/0.mpg",
    "2022-11-14T12:24,5,GET /data/m/no+year+/0.mpg",
]
SPEC_DIRT = [
    "2022-11-14T1O2:23:16,5,GET /data/m/the+rock+1996/1.mpg",
    "2022-11-14T12:23:16,5,GZET /data/m/the+rock+1996/1.mpg",
    "2022-11-14T12:23:16,5,GET /data/5m/the+rock+1996/1.mpg",
    "2022-11-14T12:23:16,5,GET /data/m/the+rock+1996/30.Hmpg",
    "2022-11-14T12:23:16,5,GET /data/m/the+rock +1996/1.mpg",
    "2022-11-14T12:23:16,5,GET /data/m/aDdjc1gioFamIk7/1.mpg",
    "2022-02-30T12:23:16,5,GET /data/m/the+rock+1996/1.mpg",  # no such day
    "2022-11-14T12:23:16,5,GET /rate/the+rock+1996=6",  # out of a 5-star range
    "2022-11-14T12:23:16,0,GET /rate/the+rock+1996=4",
    "2022-11-14T12:23:16,5,recommendation request a:1, status 200, result: A+1, 5 ms",
    "2022-11-14T12:23:16,5,GET /data/m/the+rock+1996/1.mpg\x00",
]


@pytest.mark.parametrize("line", SPEC_EXAMPLES)
def test_the_spec_examples_are_valid(line: str) -> None:
    assert strict.is_valid_line(line)
    assert strict.is_valid_line(line.encode())


@pytest.mark.parametrize("line", SPEC_DIRT)
def test_the_spec_dirt_is_not(line: str) -> None:
    assert not strict.is_valid_line(line)


def test_rating_scale_and_catalogue() -> None:
    rate = "2022-11-14T12:23:16,5,GET /rate/the+rock+1996=8"
    assert not strict.is_valid_line(rate) and strict.is_valid_line(rate, rating_scale=10)
    watch = SPEC_EXAMPLES[0]
    assert strict.is_valid_line(watch, {"padre+nuestro+2007"})
    assert not strict.is_valid_line(watch, {"the+rock+1996"})
    assert not strict.is_valid_line(b"\xff" + watch.encode())


def test_shares_no_code_with_the_parsers() -> None:
    # A second opinion built on the parsers' code would share their mistakes.
    tree = ast.parse(Path(strict.__file__).read_text())
    modules = {alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names}
    modules |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert modules and not {m for m in modules if m.startswith("movierec")}
