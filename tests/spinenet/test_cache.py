"""The shared least-recently-used cache of layouts, structures and model views."""
import threading

from spinescope.spinenet.cache import LruCache


def test_the_least_recently_used_value_goes_first_and_each_is_made_once():
    made = []
    cache = LruCache(2)

    def make(key):
        made.append(key)
        return key * 10

    assert cache.get(1, lambda: make(1)) == 10 and cache.get(2, lambda: make(2)) == 20
    assert cache.get(1, lambda: make(1)) == 10  # 1 is now the most recent, so 2 goes when 3 comes
    assert cache.get(3, lambda: make(3)) == 30
    assert cache.get(1, lambda: make(1)) == 10 and cache.get(2, lambda: make(2)) == 20
    assert made == [1, 2, 3, 2]
    cache.clear()
    assert cache.get(1, lambda: make(1)) == 10 and made[-1] == 1


def test_threads_that_make_one_key_at_once_all_get_the_value_stored_first():
    cache, start, values = LruCache(4), threading.Barrier(8), []

    def worker(index):
        start.wait()
        values.append(cache.get("key", lambda: object()))

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(values) == 8 and all(value is values[0] for value in values)
