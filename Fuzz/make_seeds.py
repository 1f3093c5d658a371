#!/usr/bin/env python3
"""Writes the fuzzers' seed corpus (Fuzz/corpus/<fuzzer>/) from the formats of docs/protocol.md and the
request examples of docs/openapi.yaml and docs/adrestia.yaml. Run again after a format changes; the
files it writes are committed. Needs PyYAML (Debian's python3-yaml, or pip's PyYAML)."""
import json
import os
import struct
import sys

import yaml

root = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(root)
corpus = os.path.join(root, "corpus")

IDENTITY = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
MOVED = [1, 0, 0, 2.5, 0, 1, 0, -1, 0, 0, 1, 0.125, 0, 0, 0, 1]
SCENE = "7f3c2a10-5b6e-4c1d-9a8b-0123456789ab"
OBJECT = "5f2b7c0e9a1d4e3f8b6c2a10"


def write(fuzzer, name, data):
    folder = os.path.join(corpus, fuzzer)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, name), "wb") as file:
        file.write(data)


def key(text):
    raw = text.encode()
    return bytes([len(raw)]) + raw


def binary(msg_type=1, seq=0, ts=0, scene=SCENE, obj=OBJECT, device="", transform=IDENTITY, values=None):
    out = struct.pack(">BBBBQQ", 0xAE, 1, msg_type, 0, seq, ts) + key(scene) + key(obj) + key(device)
    if values is not None:
        return out + bytes([len(values)]) + b"".join(struct.pack(">d", v) for v in values)
    return out + b"".join(struct.pack(">d", v) for v in transform)


def json_event(**fields):
    return json.dumps(fields, separators=(",", ":"))


# UDP datagrams: JSON (msg_type 1 and 9) and binary events, and the scene-moved notice.
datagrams = {
    "json-object.json": json_event(msg_type=1, key=OBJECT, scene=SCENE, transform=IDENTITY),
    "json-object-seq-ts.json": json_event(msg_type=1, key=OBJECT, scene=SCENE, transform=MOVED, seq=17, ts=123456789),
    "json-object-short-transform.json": json_event(msg_type=1, key="cube", scene="lobby", transform=[1, 0, 0, 3.5]),
    "json-object-outbound.json": '{"msg_type":1,"key":"cube","scene":"lobby","transform":[1.0,0.0,0.0,0.0,0.0,1.0,0.0,0.0,0.0,0.0,1.0,0.0,0.0,0.0,0.0,1.0],"assets":[],"actions":[],"seq":17,"ts":123456789}',
    "json-property.json": json_event(msg_type=9, key=OBJECT, scene=SCENE, values=[0.8]),
    "json-property-4.json": json_event(msg_type=9, key="p", scene="lobby", values=[1, -2.5, 3e10, 4e-5], seq=3),
    "json-src-v4.json": json_event(msg_type=1, key="cube", scene="lobby", transform=IDENTITY, src="127.0.0.1:40001"),
    "json-src-v6.json": json_event(msg_type=1, key="cube", scene="lobby", src="[::1]:40001"),
    "json-escapes.json": '{"msg_type":1,"key":"c\\u00e9\\ud83d\\ude00\\n\\"x\\"","scene":"l\\/obby","other":{"a":[true,false,null,{"b":"c"}],"d":-1.5e3},"transform":[]}',
    "json-src-scoped-ipv6.json": '{"src":"[fe80::1%lo]:70000","msg_type":1,"key":"o","scene":"s"}',
    "json-whitespace.json": ' {\n\t"msg_type" : 1 ,\r\n "key" : "cube" , "scene" : "lobby" } trailing bytes',
    "json-empty.json": "{}",
    "binary-object.bin": binary(),
    "binary-object-seq.bin": binary(seq=42, ts=1_700_000_000_000_000_000, device="phone-1", transform=MOVED),
    "binary-property.bin": binary(msg_type=9, values=[0.8]),
    "binary-property-4.bin": binary(msg_type=9, obj="p", values=[1.0, 2.0, 3.0, 4.0], device="d"),
    "scene-moved-notice.bin": struct.pack(">BBBBQQ", 0xAE, 1, 200, 0, 0, 0) + key(SCENE) + b"\x00\x00",
}
for name, data in datagrams.items():
    write("FuzzDatagram", name, data)


# The ZeroMQ/Kafka change stream body (ChangeEventCodec): updates with and without a source, transactions.
def update(host, port, event):
    raw = host.encode()
    return b"\x01" + bytes([len(raw)]) + raw + struct.pack(">H", port) + event


def transaction(msg_type, scene, body):
    return b"\x02" + struct.pack(">H", msg_type) + key(scene) + body.encode()


change = {
    "update-v4.bin": update("127.0.0.1", 40001, binary(seq=1, device="phone-1")),
    "update-v6.bin": update("::1", 40001, binary(transform=MOVED)),
    "update-nosource.bin": update("", 0, binary(msg_type=9, values=[1.5, 2.5])),
    "transaction-object.bin": transaction(0, "lobby", '{"msg_type":0,"key":"5f2b7c0e9a1d4e3f8b6c2a10","name":"cube","scene":"lobby","transform":[1,0,0,0,0,1,0,0,0,0,1,0,0,0,0,1],"assets":[],"actions":[]}'),
    "transaction-property.bin": transaction(9, "lobby", '{"msg_type":9,"key":"p","scene":"lobby","values":[0.8]}'),
}
for name, data in change.items():
    write("FuzzChangeEventCodec", name, data)

# The UDP change stream (`scene\njson`): updates carry src; anything else is a transaction.
framing = {
    "update-v4.txt": "lobby\n" + json_event(msg_type=1, key="cube", scene="lobby", transform=MOVED, seq=5, src="127.0.0.1:40001"),
    "update-v6.txt": "lobby\n" + json_event(msg_type=9, key="p", scene="lobby", values=[0.5], src="[::1]:40002"),
    "transaction.txt": "lobby\n" + '{"msg_type":3,"key":"cube","scene":"lobby"}',
    "transaction-original.txt": SCENE + "\n" + json_event(msg_type=1, key=OBJECT, scene=SCENE, transform=IDENTITY),
    "other-scene.txt": "lobby\n" + json_event(msg_type=1, key="cube", scene="hall", src="127.0.0.1:1"),
}
for name, data in framing.items():
    write("FuzzUDPStreamFraming", name, data)


# HTTP bodies: every request example of the OpenAPI documents, and a few of every body type.
def request_examples(path):
    with open(path) as file:
        spec = yaml.safe_load(file)
    for route, methods in spec.get("paths", {}).items():
        for method, operation in methods.items():
            if not isinstance(operation, dict):
                continue
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                examples = [media["example"]] if "example" in media else []
                examples += [e.get("value") for e in media.get("examples", {}).values() if "value" in e]
                for example in examples:
                    yield operation.get("operationId", method + route), example


bodies = {}
for document in ("openapi.yaml", "adrestia.yaml"):
    for operation, example in request_examples(os.path.join(repo, "docs", document)):
        name = f"{operation}.json"
        index = 2
        while name in bodies:
            name, index = f"{operation}-{index}.json", index + 1
        bodies[name] = json.dumps(example, separators=(",", ":"))

keyframe = {
    "frame": 10, "owner": "phone-1", "transform": MOVED,
    "translation_handle": [{"left_type": "vector", "left_x": -1, "left_y": 0, "right_type": "free", "right_x": 1, "right_y": 0.5}],
    "rotation_handle": [], "scale_handle": [],
}
bodies.update({
    "object-create-action.json": json.dumps({"objects": [{"name": "cube", "scene": "lobby", "type": "Mesh", "subtype": "Cube", "owner": "phone-1",
        "transform": MOVED, "assets": ["a1"], "actions": [{"name": "spin", "description": "d", "keyframes": [keyframe, dict(keyframe, frame=1)]}]}]}),
    "object-query.json": json.dumps({"num_records": 5, "transaction_id": "t-1", "objects": [{"name": "cube"}, {"scene": "lobby", "assets": ["a1"]}]}),
    "property-values-mixed.json": json.dumps({"properties": [{"name": "p", "scene": "lobby", "values": [0.8, {"value": 2}],
        "actions": [{"name": "fade", "keyframes": [{"frame": 2, "values": [{"value": 1, "left_type": "vector", "right_x": 2}]}]}]}]}),
    "object-action.json": json.dumps({"name": "spin", "description": "d", "owner": "o", "keyframes": [keyframe]}),
    "property-action.json": json.dumps({"name": "fade", "keyframes": [{"frame": 1, "values": [{"value": 0.5}]}, {"frame": 1, "owner": "x"}]}),
    "object-keyframe.json": json.dumps(keyframe),
    "object-keyframe-noframe.json": json.dumps({"transform": IDENTITY}),
    "property-keyframe.json": json.dumps({"frame": 3, "values": [{"value": 1}, {"value": 2}, {"value": 3}, {"value": 4}]}),
    "scene-register-pose.json": json.dumps({"scenes": [
        {"key": "a", "devices": [{"key": "phone-1", "hostname": "127.0.0.1", "port": 40001, "format": "binary",
            "transform": {"translation": [1, 2, 3], "rotation": [0.1, 0.2, 0.3]}}]},
        {"key": "b", "latitude": 48.85, "longitude": 2.35, "devices": [{"key": "phone-1", "hostname": "::1", "port": 40002,
            "transform": {"translation": [-1, 0, 5], "rotation": [1.5707963267948966, 0, -3]}}]},
        {"key": "c", "latitude": -33.9, "longitude": 151.2, "devices": [{"key": "tablet", "hostname": "localhost", "port": 1,
            "transform": {"translation": [0, 0, 0], "rotation": [0, 1.5707963267948966, 0]}}]}]}),
    "scene-query.json": json.dumps({"start_record": 1, "num_records": 2, "scenes": [{"name": "Lobby", "region": "eu", "tags": ["demo"],
        "latitude": 48.85, "longitude": 2.35, "distance": 100}, {"latitude": 51.5, "longitude": -0.12}]}),
    "scene-update-remove.json": json.dumps({"operation": 11, "scenes": [{"name": "n", "private": True, "assets": ["a"], "tags": ["t"], "active": False}]}),
    "pair-announcement.json": json.dumps({"pair": "east-1", "region": "east", "clyman_udp": "127.0.0.1:8201",
        "clyman_http": "http://127.0.0.1:8101", "crazyivan_http": "http://127.0.0.1:8102"}),
    "pair-announcement-v6.json": json.dumps({"pair": "east-2", "region": "east", "clyman_udp": "[::1]:8201",
        "clyman_http": "https://[::1]:8101", "crazyivan_http": "http://localhost:8102"}),
    "event-endpoint.json": json.dumps({"event_destination_host": "127.0.0.1", "event_destination_port": 8762, "pair": "local", "region": ""}),
})
for name, data in bodies.items():
    write("FuzzHTTPBody", name, data)



# Sealed datagrams (FuzzSealedDatagram): its first byte chooses the mode (0 open, 1 seal and tamper, 2 CBC).
# Mode 0 seeds are sealed as the fuzzer's session would seal them (secret bytes 0 to 31, the key id in the
# header), which needs the `cryptography` package (pip install cryptography).
def sealed_seeds():
    from cryptography.hazmat.primitives import hashes, padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    secret = bytes(range(32))
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"aesel sealed events v1", info=b"to pair").derive(secret)

    def seal(plaintext, key_id=42, salt=7, counter=1, device="phone-1"):
        header = struct.pack(">BBBBQIQ", 0xAF, 1, 1, 0, key_id, salt, counter)
        aad = header + key(SCENE) + key(device)
        return header + AESGCM(derived).encrypt(header[12:], plaintext, aad)

    def cbc(plaintext):
        padder = padding.PKCS7(128).padder()
        padded = padder.update(plaintext) + padder.finalize()
        encryptor = Cipher(algorithms.AES(b"0123456789abcdef0123456789abcdef"), modes.CBC(b"fedcba9876543210")).encryptor()
        import base64
        return base64.b64encode(encryptor.update(padded) + encryptor.finalize())

    seeds = {
        "open-json.bin": b"\x00" + seal(datagrams["json-object.json"].encode()),
        "open-binary.bin": b"\x00" + seal(datagrams["binary-object-seq.bin"], key_id=(1 << 53) - 1, counter=1 << 62),
        "open-empty.bin": b"\x00" + seal(b""),
        "open-other-device.bin": b"\x00" + seal(b"{}", device="phone-2"),
        "open-header-only.bin": b"\x00" + struct.pack(">BBBBQIQ", 0xAF, 1, 2, 0, 9, 0, 0) + bytes(16),
        "seal-json.bin": b"\x01" + datagrams["json-object.json"].encode(),
        "seal-binary.bin": b"\x01" + datagrams["binary-property-4.bin"],
        "cbc-json.txt": b"\x02" + cbc(datagrams["json-object.json"].encode()),
        "cbc-lines.txt": b"\x02" + b"\r\n".join(cbc(b"A" * 100)[i:i + 72] for i in range(0, 152, 72)),
        "cbc-bad-padding.txt": b"\x02" + b"AAAAAAAAAAAAAAAAAAAAAA==",
    }
    for name, data in seeds.items():
        write("FuzzSealedDatagram", name, data)


sealed_seeds()
print(f"wrote {len(datagrams)} datagrams, {len(change)} change events, {len(framing)} framings, {len(bodies)} bodies and the sealed datagrams", file=sys.stderr)
