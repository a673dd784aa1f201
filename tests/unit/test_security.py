"""Kafka security settings: the client configurations built from them, masking, one-line errors.

No SASL or TLS broker runs here: these tests check what each client library
is given, not a handshake.
"""

from __future__ import annotations

import ssl

import faust
import pytest
from test_cli import run_cli

from stream_app.worker.app import faust_config
from stream_app.worker.publish import producer_config
from stream_app.worker.security import aiokafka_kwargs, faust_credentials, librdkafka_config
from stream_app.settings import SettingsError, load_settings
from stream_app.settings_doc import effective

SECRET = "s3cr3t-Pa55word"


def sasl_ssl(**kw):
    return load_settings(broker="kafka://b1:9093", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                         sasl_username="trendcast", sasl_password=SECRET, **kw)


def test_plaintext_is_the_default_and_adds_nothing():
    s = load_settings(broker="kafka://b1:9092")
    assert faust_credentials(s) is None
    assert aiokafka_kwargs(s) == {"security_protocol": "PLAINTEXT"}
    assert librdkafka_config(s) == {"security.protocol": "plaintext"}


def test_sasl_ssl_with_scram_reaches_every_client():
    s = sasl_ssl()
    creds = faust_credentials(s)
    assert isinstance(creds, faust.SASLCredentials)
    assert creds.protocol.value == "SASL_SSL" and creds.mechanism.value == "SCRAM-SHA-512"
    assert (creds.username, creds.password) == ("trendcast", SECRET)
    assert isinstance(creds.ssl_context, ssl.SSLContext) and creds.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert isinstance(faust_config(s)["broker_credentials"], faust.SASLCredentials)

    kw = aiokafka_kwargs(s)
    assert kw["security_protocol"] == "SASL_SSL" and kw["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kw["sasl_plain_username"] == "trendcast" and kw["sasl_plain_password"] == SECRET
    assert isinstance(kw["ssl_context"], ssl.SSLContext)

    conf = producer_config(s)
    assert conf["security.protocol"] == "sasl_ssl" and conf["sasl.mechanisms"] == "SCRAM-SHA-512"
    assert conf["sasl.username"] == "trendcast" and conf["sasl.password"] == SECRET


def test_clients_accept_the_configurations():
    """The real client classes take these arguments (construction only: nothing connects)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient
    from confluent_kafka import Producer

    s = sasl_ssl()
    Producer({**producer_config(s), "client.id": "test"})  # librdkafka checks every property name here

    async def build():
        AIOKafkaConsumer(bootstrap_servers=s.bootstrap, group_id=None, **aiokafka_kwargs(s))
        AIOKafkaAdminClient(bootstrap_servers=s.bootstrap, **aiokafka_kwargs(s))

    import asyncio

    asyncio.run(build())


def test_plain_over_plaintext_and_ca_file(tmp_path):
    s = load_settings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="u",
                      sasl_password="p")
    assert "ssl_context" not in aiokafka_kwargs(s)
    assert faust_credentials(s).protocol.value == "SASL_PLAINTEXT"
    ca = tmp_path / "ca.pem"  # any PEM bundle will do: the context only loads it
    ca.write_text(open(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt").read())
    s = load_settings(security_protocol="SSL", ssl_cafile=str(ca))
    assert librdkafka_config(s) == {"security.protocol": "ssl", "ssl.ca.location": str(ca)}
    assert isinstance(faust_credentials(s), faust.SSLCredentials)


@pytest.mark.parametrize(
    "kw,needle",
    [
        ({"security_protocol": "SASL_SSL"}, "needs sasl_mechanism, sasl_username, sasl_password"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"}, "needs sasl_password"),
        ({"sasl_username": "u"}, "security_protocol is PLAINTEXT"),
        ({"ssl_cafile": "/ca.pem"}, "use SSL or SASL_SSL"),
        ({"security_protocol": "TLS"}, "setting security_protocol"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, "setting sasl_mechanism"),
    ],
)
def test_invalid_combinations_are_one_line(kw, needle):
    with pytest.raises(SettingsError) as e:
        load_settings(**kw)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_invalid_combination_from_the_environment_exits_2():
    r = run_cli("config", TRENDCAST_SECURITY_PROTOCOL="SASL_SSL", TRENDCAST_SASL_USERNAME="u")
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "TRENDCAST_SASL_PASSWORD" in lines[0]


def test_the_password_is_masked_everywhere_it_is_shown():
    s = sasl_ssl()
    assert effective(s)["TRENDCAST_SASL_PASSWORD"] == "**********"
    assert SECRET not in repr(s) and SECRET not in str(s.model_dump())
    assert SECRET not in repr(faust_credentials(s))
    r = run_cli("config", TRENDCAST_SECURITY_PROTOCOL="SASL_SSL", TRENDCAST_SASL_MECHANISM="PLAIN",
                TRENDCAST_SASL_USERNAME="u", TRENDCAST_SASL_PASSWORD=SECRET)
    assert r.returncode == 0, r.stderr
    assert "TRENDCAST_SASL_PASSWORD=**********" in r.stdout and SECRET not in r.stdout + r.stderr
