"""Listen keys (``gateway/listen_keys.py``), pure: a key lives 60 minutes from its creation
or last keep-alive, a second create returns the live one extended, a key belongs to its
API key, closing and expiry make it unknown, the store stays within its bound; and a
random sequence of operations against a simple model."""
from __future__ import annotations

import itertools
import tempfile

import pytest
from hypothesis import given, settings, strategies as st

from gateway.keys import KeyStore
from gateway.listen_keys import VALIDITY_MS, ListenKeys, ListenKeysFull

HOUR = VALIDITY_MS


def counter():
    numbers = itertools.count(1)
    return lambda: f"lk{next(numbers):058d}"


def test_a_listen_key_lives_an_hour_from_its_last_keep_alive():
    keys = ListenKeys(new_token=counter())
    key = keys.create("api-a", 7, 0)
    assert len(key) == 60 and keys.live(key, HOUR - 1).account_id == 7
    assert keys.keep_alive(key, "api-a", HOUR - 1)
    assert keys.live(key, 2 * HOUR - 2) is not None
    assert keys.live(key, 2 * HOUR - 1) is None                 # expired: unknown from now on
    assert not keys.keep_alive(key, "api-a", 2 * HOUR) and len(keys) == 0
    keys.check_invariants()


def test_a_second_create_returns_the_live_key_extended_and_an_expired_one_is_replaced():
    keys = ListenKeys(new_token=counter())
    first = keys.create("api-a", 7, 0)
    assert keys.create("api-a", 7, HOUR - 1) == first and keys.live(first, 2 * HOUR - 2) is not None
    second = keys.create("api-a", 7, 3 * HOUR)
    assert second != first and keys.live(first, 3 * HOUR) is None and len(keys) == 1
    keys.check_invariants()


def test_a_listen_key_answers_only_its_own_api_key():
    keys = ListenKeys(new_token=counter())
    mine, theirs = keys.create("api-a", 7, 0), keys.create("api-b", 8, 0)
    assert not keys.keep_alive(theirs, "api-a", 1) and not keys.close(theirs, "api-a", 1)
    assert keys.live(theirs, 1).account_id == 8
    assert keys.close(mine, "api-a", 1) and keys.live(mine, 1) is None and not keys.close(mine, "api-a", 1)
    assert keys.close_api_key("api-b") == theirs and keys.live(theirs, 1) is None and len(keys) == 0
    assert keys.close_api_key("api-b") is None


def test_a_full_store_forgets_expired_keys_and_refuses_when_every_one_is_live():
    keys = ListenKeys(keys_max=2, new_token=counter())
    keys.create("api-a", 1, 0)
    keys.create("api-b", 2, 10)
    with pytest.raises(ListenKeysFull):
        keys.create("api-c", 3, HOUR - 1)
    assert len(keys) == 2
    keys.create("api-c", 3, HOUR)                            # api-a's has expired: its room is taken
    assert len(keys) == 2 and keys.live(keys.create("api-b", 2, HOUR), HOUR).api_key == "api-b"
    keys.check_invariants()


OPERATIONS = st.lists(st.tuples(st.sampled_from(["create", "keep_alive", "close", "close_api_key", "live"]),
                                st.integers(0, 3), st.integers(0, 3), st.integers(0, HOUR // 2)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(OPERATIONS)
def test_listen_keys_agree_with_a_simple_model(operations):
    agrees_with_the_model(ListenKeys(keys_max=3, new_token=counter()), operations)


@settings(max_examples=30, deadline=None)
@given(OPERATIONS)
def test_listen_keys_in_the_shared_store_agree_with_the_model_too(operations):
    """The same in the key store's LMDB tables, which every gateway process on a host opens."""
    with tempfile.TemporaryDirectory() as directory:
        store = KeyStore.open(directory)
        try:
            agrees_with_the_model(ListenKeys(keys_max=3, new_token=counter(),
                                             tables=ListenKeys.in_store(store).tables()), operations)
        finally:
            store.close()


def agrees_with_the_model(keys: ListenKeys, operations) -> None:
    """The model: per API key, its key and its expiry; every answer and the live keys agree."""
    model, made, now = {}, [], 0
    for operation, who, which, step in operations:
        now += step
        api = f"api-{who}"
        model = {a: (k, e) for a, (k, e) in model.items() if e > now}     # expiry
        key = made[which % len(made)] if made else "none"
        owner = next((a for a, (k, _) in model.items() if k == key), None)
        if operation == "create":
            if api in model:
                assert keys.create(api, who, now) == model[api][0]
                model[api] = (model[api][0], now + HOUR)
            elif len(model) >= 3:
                with pytest.raises(ListenKeysFull):
                    keys.create(api, who, now)
            else:
                made.append(keys.create(api, who, now))
                model[api] = (made[-1], now + HOUR)
        elif operation == "keep_alive":
            assert keys.keep_alive(key, api, now) == (owner == api)
            if owner == api:
                model[api] = (key, now + HOUR)
        elif operation == "close":
            assert keys.close(key, api, now) == (owner == api)
            model.pop(api) if owner == api else None
        elif operation == "close_api_key":
            keys.close_api_key(api)
            model.pop(api, None)
        live = {k for k in made if keys.live(k, now) is not None}
        assert live == {k for k, _ in model.values()}
        keys.check_invariants()
