"""Puente's HTTP gateway: the front door for agencies that do not run a Kafka client.

``puente_gateway.app.create_app(settings, gateway)`` builds the ASGI app; ``puente gateway
serve`` runs it under uvicorn; ``puente gateway token ...`` manages agency tokens. See
docs/gateway.md. The package itself exports nothing: each name has one import path, its module.
"""
