"""Kafka security settings, translated once for each client library trendcast uses.

Three kinds of client talk to the brokers: Faust (``broker_credentials``),
aiokafka (admin, producer and consumers of the CLI and the worker's start-up
and lag probe) and librdkafka (the worker's publisher). Each spells the same
settings differently; these functions are the only place that knows how, so
a new client cannot forget the password or the CA file.

The password leaves its :class:`~pydantic.SecretStr` only inside the objects
returned here; nothing here logs.
"""

from __future__ import annotations

import ssl
from typing import Any

from stream_app.settings import Settings


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A TLS context verifying the brokers against ``ssl_cafile`` (system CAs when unset); ``None`` without TLS."""
    if not settings.security_protocol.endswith("SSL"):
        return None
    return ssl.create_default_context(cafile=settings.ssl_cafile)


def _password(settings: Settings) -> str | None:
    return settings.sasl_password.get_secret_value() if settings.sasl_password is not None else None


def faust_credentials(settings: Settings) -> Any:
    """Faust's ``broker_credentials`` for ``settings``; ``None`` for PLAINTEXT."""
    import faust

    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context(settings))
    return faust.SASLCredentials(
        username=settings.sasl_username,
        password=_password(settings),
        ssl_context=ssl_context(settings),
        mechanism=settings.sasl_mechanism,
    )


def aiokafka_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments that make an aiokafka client (admin, producer, consumer) use ``settings``' security."""
    kw: dict[str, Any] = {"security_protocol": settings.security_protocol}
    ctx = ssl_context(settings)
    if ctx is not None:
        kw["ssl_context"] = ctx
    if settings.security_protocol.startswith("SASL_"):
        kw["sasl_mechanism"] = settings.sasl_mechanism
        kw["sasl_plain_username"] = settings.sasl_username
        kw["sasl_plain_password"] = _password(settings)
    return kw


def librdkafka_config(settings: Settings) -> dict[str, Any]:
    """confluent-kafka (librdkafka) properties for ``settings``' security."""
    conf: dict[str, Any] = {"security.protocol": settings.security_protocol.lower()}
    if settings.ssl_cafile:
        conf["ssl.ca.location"] = settings.ssl_cafile
    if settings.security_protocol.startswith("SASL_"):
        conf["sasl.mechanisms"] = settings.sasl_mechanism
        conf["sasl.username"] = settings.sasl_username
        conf["sasl.password"] = _password(settings)
    return conf
