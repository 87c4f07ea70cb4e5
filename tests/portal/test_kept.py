"""portal/kept.py: the bounded store the hot paths keep definitions, compiled SQL and token hints in."""
import threading

from portal.kept import KeptValues


def test_the_least_recently_used_is_dropped_first():
    kept = KeptValues(2)
    kept.put("a", 1)
    kept.put("b", 2)
    assert kept.get("a") == 1  # used: "b" is now the least recent
    kept.put("c", 3)
    assert kept.get("b") is None and kept.get("a") == 1 and kept.get("c") == 3 and len(kept) == 2


def test_put_again_refreshes_and_replaces():
    kept = KeptValues(2)
    kept.put_many([("a", 1), ("b", 2)])
    kept.put("a", 10)
    kept.put("c", 3)
    assert kept.get("a") == 10 and kept.get("b") is None


def test_drop_and_clear():
    kept = KeptValues(3)
    kept.put_many([("a", 1), ("b", 2)])
    kept.drop("a")
    kept.drop("missing")  # nothing to drop: no error
    assert kept.get("a") is None and kept.get("b") == 2
    kept.clear()
    assert len(kept) == 0 and not kept


def test_a_bound_larger_than_one_batch_keeps_the_batch_tail():
    kept = KeptValues(2)
    kept.put_many((key, key) for key in "abcd")
    assert [key for key in "abcd" if kept.get(key) is not None] == ["c", "d"]


def test_threads_never_exceed_the_bound():
    kept, failures = KeptValues(50), []

    def hammer(n):
        try:
            for i in range(2000):
                kept.put((n, i % 80), i)
                kept.get((n, (i * 7) % 80))
                if i % 13 == 0:
                    kept.drop((n, i % 80))
                assert len(kept) <= 50
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and len(kept) <= 50
