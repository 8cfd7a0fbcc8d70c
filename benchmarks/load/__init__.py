"""A load generator that speaks Centrifugo's client protocol (JSON and Protobuf) itself.

Run ``python -m benchmarks.load SCENARIO --url ws://HOST:PORT/connection/websocket --api
http://HOST:PORT/api --key KEY --secret HMAC``; ``python -m benchmarks.load.suite`` runs the
whole set against a server it starts pinned to one core (``make bench-load``).
"""
