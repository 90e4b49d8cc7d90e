"""The pure pieces of bench/bench_real.py: SPEC movie ids from MovieLens titles, the wheel
reader (on a tiny wheel built here; nothing is downloaded), the log lines, the two splits
and the metrics, each against answers worked out by hand."""

from __future__ import annotations

import hashlib
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bench import movielens as ml
from bench import real_protocols as rp
from movierec.ids import is_movie_id
from tests.support.logcheck import RATE_RE

# --- movie ids -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "year", "expected"),
    [  # SPEC section 3's own examples
        ("Crouching Tiger, Hidden Dragon", 2000, "crouching+tiger_+hidden+dragon+2000"),
        ("Schindler's List", 1993, "schindlers+list+1993"),
        ("Les Misérables", 1998, "les+misrables+1998"),
        ("WALL·E", 2008, "walle+2008"),
        ("À la mode", 1993, "+la+mode+1993"),
        ("Mr. Holland's Opus", 1995, "mr.+hollands+opus+1995"),
        ("E.T. the Extra-Terrestrial", 1982, "e.t.+the+extra-terrestrial+1982"),
        ("M*A*S*H", 1970, "m*a*s*h+1970"),
        (
            "Star Wars: Episode I - The Phantom Menace",
            1999,
            "star+wars+episode+i+-+the+phantom+menace+1999",
        ),
        ("unknown", None, "unknown+"),
    ],
)
def test_slug_follows_the_spec_examples(title: str, year: int | None, expected: str) -> None:
    assert ml.slug(title, year) == expected
    assert is_movie_id(expected)


@pytest.mark.parametrize(
    ("movielens_title", "shown"),
    [
        ("Usual Suspects, The", "The Usual Suspects"),
        ("Misérables, Les", "Les Misérables"),
        ("Enfer, L'", "L'Enfer"),
        ("Horseman on the Roof, The (Hussard sur le toit, Le)", "The Horseman on the Roof"),
        ("Seven (Se7en)", "Seven"),
        ("Good, The Bad and The Ugly, The", "The Good, The Bad and The Ugly"),
        ("Paris, Texas", "Paris, Texas"),  # not an article: the comma stays
        ("Murder, My Sweet", "Murder, My Sweet"),
        ("Toy Story", "Toy Story"),
    ],
)
def test_display_title_undoes_movielens_reordering(movielens_title: str, shown: str) -> None:
    assert ml.display_title(movielens_title) == shown


def test_mis_decoded_accents_drop_like_accents() -> None:
    assert ml.slug(ml.display_title("MisÃ©rables, Les"), 1995) == "les+misrables+1995"


def test_duplicate_titles_get_distinct_spec_ids() -> None:
    titles = {1: "Ice Storm, The", 2: "Ice Storm, The", 3: "Ice Storm, The", 4: "x", 5: "x"}
    years = {1: 1997, 2: 1997, 3: 1997, 4: None, 5: None}
    ids = ml.unique_movie_ids(titles, years)
    assert ids == {
        1: "the+ice+storm+1997",
        2: "the+ice+storm+2+1997",
        3: "the+ice+storm+3+1997",
        4: "x+",
        5: "x+2+",
    }
    assert all(is_movie_id(m) for m in ids.values())


def test_items_take_the_year_from_the_title_when_the_field_has_none() -> None:
    text = (
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "1\tToy Story\t1995\tAnimation\n"
        "2\tLand Before Time III: The Time of the Great Giving (1995)\tV\tAnimation\n"
        "3\tunkonwn\tunkonwn\tunknown\n"
    )
    titles, years = ml.parse_items(text)
    assert years == {1: 1995, 2: 1995, 3: None}
    assert titles[2].startswith("Land Before Time III")


# --- the wheel reader ------------------------------------------------------------------

INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
ITEM = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
USER = "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"


def tiny_wheel(path: Path, inter_rows: list[str], skip: str = "") -> Path:
    members = {
        "inter": INTER + "".join(r + "\n" for r in inter_rows),
        "item": ITEM + "1\tUsual Suspects, The\t1995\tCrime\n2\tBabe\t1995\tDrama\n",
        "user": USER + "7\t24\tM\ttechnician\t85711\n9\t53\tF\tother\t94043\n",
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("recbole/__init__.py", "")
        for suffix, text in members.items():
            if suffix != skip:
                archive.writestr(f"{ml.MEMBER_DIR}ml-100k.{suffix}", text)
    return path


ROWS = ["7\t1\t5\t881250949", "9\t2\t3\t881250950", "7\t2\t1\t881250900"]


def test_the_reader_parses_the_wheel_in_file_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ml, "EXPECTED", {"ratings": 3, "users": 2, "movies": 2})
    wheel = tiny_wheel(tmp_path / "tiny.whl", ROWS)
    data = ml.read_wheel(wheel)
    assert data.user.tolist() == [7, 9, 7]
    assert data.item.tolist() == [1, 2, 2]
    assert data.rating.tolist() == [5, 3, 1]
    assert data.timestamp.tolist() == [881250949, 881250950, 881250900]
    assert data.movie_ids == {1: "the+usual+suspects+1995", 2: "babe+1995"}
    assert data.movie_column().tolist() == ["the+usual+suspects+1995", "babe+1995", "babe+1995"]
    assert data.wheel_sha256 == hashlib.sha256(wheel.read_bytes()).hexdigest()


def test_the_reader_fails_loudly_on_other_counts(tmp_path: Path) -> None:
    with pytest.raises(ml.DatasetMismatchError, match=r"ratings: 3 \(expected 100000\)"):
        ml.read_wheel(tiny_wheel(tmp_path / "tiny.whl", ROWS))


def test_the_reader_fails_loudly_on_a_missing_file_or_header(tmp_path: Path) -> None:
    with pytest.raises(ml.DatasetMismatchError, match=r"no .*ml-100k\.item"):
        ml.read_wheel(tiny_wheel(tmp_path / "a.whl", ROWS, skip="item"))
    with pytest.raises(ml.DatasetMismatchError, match="header"):
        ml.parse_inter("user\titem\n1\t2\n")
    with pytest.raises(ml.DatasetMismatchError, match="1 to 5"):
        ml.parse_inter(INTER + "1\t2\t4.5\t100\n")


def test_rate_lines_are_spec_lines_in_time_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ml, "EXPECTED", {"ratings": 3, "users": 2, "movies": 2})
    data = ml.read_wheel(tiny_wheel(tmp_path / "tiny.whl", ROWS))
    lines = ml.rate_lines(data, np.array([0, 1, 2]))
    assert lines == [
        "1997-12-04T15:55:00,7,GET /rate/babe+1995=1",
        "1997-12-04T15:55:49,7,GET /rate/the+usual+suspects+1995=5",
        "1997-12-04T15:55:50,9,GET /rate/babe+1995=3",
    ]
    assert all(RATE_RE.fullmatch(line) for line in lines)


# --- metrics ---------------------------------------------------------------------------


def test_ndcg_recall_precision_by_hand() -> None:
    ranked, relevant = ["a", "b", "c", "d"], {"b", "d", "x"}
    ideal3 = 1 + 1 / math.log2(3) + 1 / math.log2(4)  # three relevant fill ranks 0..2
    assert rp.ndcg(ranked, relevant, 3) == pytest.approx((1 / math.log2(3)) / ideal3)
    assert rp.ndcg(ranked, relevant, 3) == pytest.approx(0.296082, abs=1e-6)
    assert rp.ndcg(ranked, relevant, 4) == pytest.approx(0.498189, abs=1e-6)
    assert rp.recall(ranked, relevant, 3) == pytest.approx(1 / 3)
    assert rp.recall(ranked, relevant, 4) == pytest.approx(2 / 3)
    assert rp.precision(ranked, relevant, 4) == pytest.approx(2 / 4)


def test_recall_capped_reaches_one_with_more_relevant_than_slots() -> None:
    ranked, relevant = ["a", "b"], {"a", "b", "c", "d", "e"}
    assert rp.recall_capped(ranked, relevant, 2) == 1.0
    assert rp.recall(ranked, relevant, 2) == pytest.approx(0.4)
    assert rp.ndcg(ranked, relevant, 2) == pytest.approx(1.0)


def test_a_duplicate_counts_once_and_a_short_list_pays() -> None:
    assert rp.hits(["b", "b", "d"], {"b", "d"}, 3) == 2
    assert rp.ndcg(["b", "b", "d"], {"b", "d"}, 3) == pytest.approx(0.919721, abs=1e-6)
    assert rp.precision(["b"], {"b"}, 10) == pytest.approx(0.1)


def test_mean_over_users_scores_a_missing_list_zero() -> None:
    metrics = {"recall@2": (rp.recall, 2)}
    relevant = {1: {"a"}, 2: {"b"}}
    assert rp.mean_over_users({1: ["a", "z"]}, relevant, metrics) == {"recall@2": 0.5}


# --- splits ----------------------------------------------------------------------------


def test_cornac_split_is_randomstate_123_over_file_order() -> None:
    # numpy's legacy stream, pinned: RandomState(123).permutation(10) is this, forever.
    assert np.random.RandomState(123).permutation(10).tolist() == [4, 0, 7, 5, 8, 3, 1, 6, 9, 2]
    user = np.array([1, 1, 1, 1, 2, 2, 2, 2, 3, 1])
    item = np.array([10, 11, 12, 13, 10, 11, 12, 13, 10, 99])
    rating = np.array([5, 5, 5, 5, 5, 5, 5, 5, 5, 3])
    movie = np.array([f"m{i}+" for i in item])
    split = rp.cornac_split(user, item, rating, movie)
    # ceil(0.2 * 10) = 2 test rows: the permutation's last two, rows 9 and 2
    assert split.train.tolist() == [0, 1, 3, 4, 5, 6, 7, 8]
    assert split.relevant == {1: {"m12+"}}  # row 9's movie 99 is unknown to training
    assert split.dropped == {"unknown_user_or_movie": 1, "below_threshold": 0}


def test_temporal_split_holds_out_each_users_latest_fifth() -> None:
    user = np.array([1, 1, 1, 1, 1, 2, 2, 3, 3, 3])
    time = np.array([5, 1, 3, 3, 9, 4, 2, 7, 7, 7])
    item = np.array([1, 2, 3, 4, 5, 1, 6, 5, 3, 7])
    movie = np.array([f"m{i}+" for i in item])
    split = rp.temporal_split(user, time, item, movie)
    # user 1: one of five, the time-9 row; user 2: at least one, time 4; user 3: all at
    # time 7, so file order decides: the last row. Movie 7 appears nowhere else: dropped.
    assert split.train.tolist() == [0, 1, 2, 3, 6, 7, 8]
    assert split.relevant == {1: {"m5+"}, 2: {"m1+"}}
    assert split.dropped == {"movie_unseen_in_training": 1}


def test_ratios_pick_the_best_published_row_per_metric() -> None:
    rows = {"MF": {"ndcg@10": 0.05, "recall@10": 0.04}, "BPR": {"ndcg@10": 0.1}}
    out = rp.ratios({"ndcg@10": 0.12, "recall@10": 0.02}, rows)
    assert out["ndcg@10"] == {
        "ours": 0.12,
        "reference_best": 0.1,
        "best_row": "BPR",
        "ratio": 1.2,
    }
    assert out["recall@10"]["best_row"] == "MF"
    assert out["recall@10"]["ratio"] == 0.5


def test_headline_names_production_and_the_best_registered_kind() -> None:
    served = {
        "popularity": {"metrics": {"ndcg@20": 0.1}},
        "als": {"metrics": {"ndcg@20": 0.2}},
    }
    result = {
        "production": {"kind": "popularity"},
        "served": served,
        "ours": served["popularity"]["metrics"],
        "ratio_to_popularity": {"ndcg@20": 1.0},
        "ratio_to_popularity_by_kind": {"popularity": {"ndcg@20": 1.0}, "als": {"ndcg@20": 2.0}},
    }
    assert rp.headline(result) == {
        "production": "popularity",
        "ndcg@20": 0.1,
        "best_registered_kind": "als",
        "best_registered_kind_ndcg@20": 0.2,
        "ratio_to_popularity": 1.0,
        "best_kind_ratio_to_popularity": 2.0,
    }
    nothing = {"served": {}, "ours": {}, "ratio_to_popularity": {}}
    assert rp.headline(nothing)["best_registered_kind"] is None
