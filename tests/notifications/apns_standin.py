"""A stand-in for APNs: TLS with a self-signed certificate for localhost, HTTP/2 (h2), answers as told."""

import asyncio
import datetime
import json
import os
import ssl
import tempfile
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.devstack.ports import free_port

HOST = "localhost"


def self_signed(host: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


@dataclass
class Request:
    headers: dict
    body: dict


@dataclass
class ApnsStandIn:
    answers: dict = field(default_factory=dict)  # device token -> (status, reason); 200 otherwise
    requests: list[Request] = field(default_factory=list)

    async def __aenter__(self):
        cert, key = self_signed(HOST)
        self.ca_file = tempfile.NamedTemporaryFile(suffix=".pem", delete=False)
        self.ca_file.write(cert)
        self.ca_file.flush()
        with tempfile.NamedTemporaryFile(suffix=".pem") as key_file:
            key_file.write(key)
            key_file.flush()
            self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.tls.load_cert_chain(self.ca_file.name, key_file.name)
        self.tls.set_alpn_protocols(["h2"])
        self.port = free_port()
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.tls)
        self.endpoint = f"{HOST}:{self.port}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()
        self.ca_file.close()
        os.unlink(self.ca_file.name)  # kept on disk while the stand-in runs (clients load it); gone after

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        streams: dict[int, tuple[dict, bytearray]] = {}
        try:
            while data := await reader.read(65535):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        streams[event.stream_id] = ({k.decode() if isinstance(k, bytes) else k:
                                                     v.decode() if isinstance(v, bytes) else v
                                                     for k, v in event.headers}, bytearray())
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id][1].extend(event.data)
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        self._answer(conn, event.stream_id, *streams.pop(event.stream_id))
                writer.write(conn.data_to_send())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    def _answer(self, conn, stream_id: int, headers: dict, body: bytearray) -> None:
        self.requests.append(Request(headers, json.loads(body)))
        token = headers[":path"].rsplit("/", 1)[-1]
        status, reason = self.answers.get(token, (200, None))
        reply = [(":status", str(status)), ("apns-id", headers["apns-id"])]
        if reason is None:
            conn.send_headers(stream_id, reply, end_stream=True)
        else:
            conn.send_headers(stream_id, reply + [("content-type", "application/json")])
            conn.send_data(stream_id, json.dumps({"reason": reason}).encode(), end_stream=True)
