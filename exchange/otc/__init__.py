"""The OTC request-for-quote desk (issue 16, seed 000), a pure domain.

One concept per module: ``rules`` (the desk's configuration), ``pricing`` (the firm
quote: index plus a spread of named components), ``signing`` (the desk's Ed25519
signature on a quote), ``rfq`` (one request's record and its states).
"""
