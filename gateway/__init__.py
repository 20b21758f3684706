"""The gateway (issue 18): the exchange over HTTP and WebSocket, in the shapes and the
signing scheme of Binance's Spot REST API v3, so existing bots and client libraries work
by pointing their base URL here. It talks to the exchange through the Python client
(``actors/client``), as any driver does; the rules stay in the domain (``exchange/``)."""
