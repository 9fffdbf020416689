"""Cross-checks the Go codec against Jupyter's own Python implementations.

Usage: interop.py MODE [KEY] < input > output, where frames travel as a JSON list of base64
strings and whole websocket frames as one base64 string.
"""
import base64
import json
import sys

from jupyter_client.session import Session
from jupyter_server.base.zmqhandlers import (
    deserialize_binary_message,
    deserialize_msg_from_ws_v1,
    serialize_binary_message,
    serialize_msg_to_ws_v1,
)


def b64(b):
    return base64.b64encode(b).decode()


def unb64(s):
    return base64.b64decode(s)


def main():
    mode = sys.argv[1]
    key = sys.argv[2].encode() if len(sys.argv) > 2 else b""
    session = Session(key=key, signature_scheme="hmac-sha256", check_pid=False, username="py")
    if mode == "zmq-serialize":
        msg = session.msg("execute_request", content={"code": "print(6*7)", "silent": False})
        msg["buffers"] = [b"\x00\x01buf"]
        frames = session.serialize(msg, ident=[b"py-identity"])
        frames += msg["buffers"]
        print(json.dumps({"frames": [b64(f) for f in frames], "msg_id": msg["header"]["msg_id"]}))
    elif mode == "zmq-deserialize":
        frames = [unb64(f) for f in json.load(sys.stdin)]
        idents, rest = session.feed_identities(frames)
        msg = session.deserialize(rest, content=True)
        print(json.dumps({
            "identities": [b64(i) for i in idents],
            "msg_type": msg["header"]["msg_type"],
            "msg_id": msg["header"]["msg_id"],
            "content": msg["content"],
            "parent_msg_id": msg["parent_header"].get("msg_id", ""),
            "buffers": [b64(bytes(b)) for b in msg["buffers"]],
        }))
    elif mode == "ws-binary-serialize":
        msg = session.msg("display_data", content={"data": {"text/plain": "x"}})
        msg["channel"] = "iopub"
        msg["buffers"] = [b"first", b"\xff\x00second"]
        msg = json.loads(json.dumps(msg, default=str)) | {"buffers": msg["buffers"]}
        print(b64(serialize_binary_message(msg)))
    elif mode == "ws-binary-deserialize":
        msg = deserialize_binary_message(unb64(sys.stdin.read()))
        print(json.dumps({
            "channel": msg["channel"],
            "msg_type": msg["header"]["msg_type"],
            "content": msg["content"],
            "buffers": [b64(bytes(b)) for b in msg["buffers"]],
        }))
    elif mode == "ws-v1-serialize":
        msg = session.msg("execute_request", content={"code": "1+1"})
        parts = [session.pack(msg[k]) for k in ("header", "parent_header", "metadata", "content")]
        print(b64(serialize_msg_to_ws_v1(parts + [b"buf-1"], "shell")))
    elif mode == "ws-v1-deserialize":
        channel, parts = deserialize_msg_from_ws_v1(unb64(sys.stdin.read()))
        header = json.loads(parts[0])
        print(json.dumps({
            "channel": channel,
            "msg_type": header["msg_type"],
            "content": json.loads(parts[3]),
            "buffers": [b64(bytes(b)) for b in parts[4:]],
        }))
    else:
        sys.exit("unknown mode " + mode)


main()
