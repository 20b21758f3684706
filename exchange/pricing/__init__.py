"""Prices: index prices from component feeds (``index``), a price range over a time window
(``price_range``)."""
