"""The engine benchmark's own baseline (``ops/bench/book.py``): the bare book is a
real price-time book, and one run reports the engine and the bare book on the
same stream. Correctness only; speed is the benchmark's to print."""
from __future__ import annotations

from ops.bench.book import BUY, SELL, BareBook, generate, run_once


def test_bare_book_matches_in_price_then_time_order_and_skips_cancelled_orders():
    book = BareBook()
    assert book.place(1, SELL, 101, 5, True) == 0
    assert book.place(2, SELL, 100, 5, True) == 0
    assert book.place(3, SELL, 100, 5, True) == 0
    assert book.place(4, SELL, 100, 5, True) == 0
    assert book.cancel(3) and not book.cancel(3)
    assert book.place(5, BUY, 100, 7, False) == 2            # 2 (5 lots) then 4 (2 lots); 3 was cancelled
    assert book.orders[4][2] == [4, 3] and 2 not in book.orders
    assert book.place(6, BUY, 101, 9, True) == 2             # the rest of 4, then 1 at the worse price
    assert 1 not in book.orders and book.orders[6][1:] == (101, [6, 1])   # 1 lot left rests as a bid
    assert book.place(7, SELL, None, 10, False) == 1          # a market sell takes the resting bid, no rest
    assert book.orders == {} and book.levels == ({}, {})


def test_a_run_reports_the_engine_beside_the_bare_book_on_the_same_stream():
    assert generate(500, 3, 50, 1, 1) == generate(500, 3, 50, 1, 1)
    result = run_once(3_000, seed=7, accounts=1_000, gc_mode="tuned", pipeline=True, isolate=False)
    assert result["conservation_ok"] and result["commands"] == 3_000
    assert result["bare_commands_per_s"] > 0 and 0 < result["engine_to_bare_ratio"] == round(
        result["commands_per_s"] / result["bare_commands_per_s"], 4)
    assert abs(result["fills"] - result["bare_fills"]) <= result["fills"] // 50     # the same matching
    assert result["pipeline_same_state_hash"] is True                                # fused and pipeline agree
    assert result["pipeline_commands_per_s"] > 0 and result["fused_to_pipeline_ratio"] == round(
        result["commands_per_s"] / result["pipeline_commands_per_s"], 3)


def test_the_rules_on_run_does_the_same_work_with_nothing_refused_each_engine_in_its_own_process():
    result = run_once(3_000, seed=7, accounts=1_000, gc_mode="tuned", pipeline=False)      # isolated: spawned
    assert result["rules_on_refused"] == 0 and result["rules_on_same_book"] is True
    assert result["rules_on_commands_per_s"] > 0 and result["rules_on_to_off_ratio"] == round(
        result["rules_on_commands_per_s"] / result["commands_per_s"], 4)
