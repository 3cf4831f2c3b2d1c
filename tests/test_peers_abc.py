"""The peers section's bookkeeping (benchmarks/peers.py), without sbi or pyABC.

The peers' runs and EPI's fit are replaced by fakes, so these tests need
neither optional package and take no time: they check that every peer gets
a row per N, that medians count unreached runs as +inf, that what happened
reaches the notes, and that a missing package gives skipped rows.
"""

import numpy as np
import pytest

from benchmarks import peers, time_to_property


def _fake_peer_run(method, N, seed, budget_s, **options):
    if method == "abc":
        assert options == {}
    else:
        assert options == {"n_round": peers.PLAN[N][0]}
    reached = method == "sbi" or (method == "abc" and seed == 0)
    return {
        "seconds": 10.0 + seed if reached else np.nan,
        "sims": 3000 if reached else np.nan,
        "steps": 1,
        "closest": 0.4 if reached else 2.0,
        "info": "round 1",
        "trace": "10.0s/3000/0.40",
        "note": "" if reached else f"killed at the budget during {method}'s round 1",
    }


def _fake_one_run(N, seed, budget_s, max_epochs):
    return {"t_criterion": 5.0 + seed, "sims_criterion": 1e5, "epoch_criterion": 1}


@pytest.fixture
def faked(monkeypatch):
    monkeypatch.setattr(peers, "available", lambda peer=None: True)
    monkeypatch.setattr(peers, "peer_run", _fake_peer_run)
    monkeypatch.setattr(time_to_property, "one_run", _fake_one_run)


def test_every_peer_gets_a_row_per_N_beside_EPI(faked):
    rows, runs = peers.run(sizes=(2, 50), n_seeds=3)
    assert [r["benchmark"].split(": EPI vs ")[1].split(",")[0] for r in rows] == [
        peers.LABELS[p] for p in peers.PEERS
    ] * 2
    assert len(runs) == 2 * 3 * (len(peers.PEERS) + 1)
    assert {r["method"] for r in runs} == {*peers.PEERS, "epi"}
    # Every run row has the same columns (the CSV takes them from the first).
    assert len({tuple(r) for r in runs}) == 1
    by = {(r["benchmark"].split(": ")[0], r["benchmark"].split(" vs ")[1]): r for r in rows}
    sbi = by["rnn N=2 (D=8)", "sbi TSNPE, to ||E f - mu|| < 0.5"]
    assert sbi["value"] == 6.0 and sbi["baseline"] == 11.0
    assert sbi["ratio"] == pytest.approx(6.0 / 11.0)
    assert "sbi 3/3 within 300 s" in sbi["notes"] and "killed" not in sbi["notes"]
    # One of three seeds reached: the median counts the others as +inf.
    abc = by["rnn N=50 (D=200)", "pyABC SMC-ABC, to ||E f - mu|| < 0.5"]
    assert abc["baseline"] == np.inf and abc["ratio"] == 0.0
    assert "abc 1/3 within 600 s" in abc["notes"]
    assert "1000 particles" in abc["notes"]
    mcmc = by["rnn N=50 (D=200)", "sbi TSNPE + MCMC, to ||E f - mu|| < 0.5"]
    assert "killed at the budget during sbi-mcmc's round 1" in mcmc["notes"]
    assert "5000 per round" in mcmc["notes"]


def test_quick_is_one_short_run_per_peer(faked, monkeypatch):
    budgets = []

    def recording(method, N, seed, budget_s, **options):
        budgets.append((method, N, seed, budget_s))
        return _fake_peer_run(method, N, seed, budget_s, **options)

    monkeypatch.setattr(peers, "peer_run", recording)
    rows, _ = peers.run(quick=True)
    assert budgets == [(p, 10, 0, peers.QUICK_BUDGET) for p in peers.PEERS]
    assert len(rows) == len(peers.PEERS)


def test_a_missing_package_skips_its_rows(monkeypatch):
    monkeypatch.setattr(peers, "available", lambda peer=None: peer != "abc")
    monkeypatch.setattr(peers, "peer_run", _fake_peer_run)
    monkeypatch.setattr(time_to_property, "one_run", _fake_one_run)
    rows, runs = peers.run(sizes=(10,), n_seeds=1)
    skipped = [r for r in rows if r["notes"].startswith("skipped")]
    assert [r["benchmark"] for r in skipped] == ["rnn N=10: EPI vs pyABC SMC-ABC"]
    assert "abc" not in {r["method"] for r in runs}


def test_nothing_importable_gives_one_skipped_row(monkeypatch):
    monkeypatch.setattr(peers, "available", lambda peer=None: False)
    rows, runs = peers.run()
    assert len(rows) == 1 and rows[0]["notes"].startswith("skipped") and runs == []
