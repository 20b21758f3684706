"""The wire format between our own actors and clients: pickled batches as bytes.

Ray serialises call arguments with cloudpickle, whose per-object Python hook
costs about 3 us per message NamedTuple (measured here); the standard pickle
with the messages' ``__reduce__`` costs about 0.7 us. So batches cross actor
boundaries as one ``bytes`` object that Ray passes through untouched. This is
transport between processes of one deployment, never a persistence format
(the journal uses its own versioned encoding).
"""
from __future__ import annotations

import pickle

PROTOCOL = 5


def pack(obj) -> bytes:
    return pickle.dumps(obj, protocol=PROTOCOL)


def unpack(data):
    """Decode ``pack`` output; a non-bytes value is returned as is (direct calls)."""
    if type(data) is bytes:
        return pickle.loads(data)
    return data
