"""Orders, the price-time book and one market's matching engine."""
