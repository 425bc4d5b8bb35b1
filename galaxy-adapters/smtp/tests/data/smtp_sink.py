"""A real SMTP server for the galaxy-smtp tests, built on aiosmtpd.

Listens on 127.0.0.1 (port 0 picks a free one), prints "READY <port>" once it accepts
connections, and answers each message by its first recipient's local part:

  reply-NNN@...   answer the message with SMTP code NNN (e.g. 451, 550)
  relay-denied@... answer as Postfix does a client it does not relay for (554 5.7.1)
  hang@...        never answer the message (the client's timeout case)
  anything else   accept it: "250 2.0.0 OK queued as <n>"

Accepted messages are written to --out as <n>.json (client address, envelope, headers,
decoded text and HTML parts). --auth USER:PASSWORD requires SMTP AUTH; --tls-cert/--tls-key offer and
require STARTTLS, or with --implicit-tls speak TLS from the first byte (smtps).
Debian: apt-get install python3-aiosmtpd (or pip install aiosmtpd).
"""

import argparse
import asyncio
import email
import email.policy
import json
import logging
import os
import re
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

# aiosmtpd itself still sets the attribute it deprecates and logs a warning about it on
# every login; only errors are worth showing in the test output.
logging.getLogger("mail.log").setLevel(logging.ERROR)


class Handler:
    def __init__(self, out):
        self.out = out
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        local = envelope.rcpt_tos[0].split("@", 1)[0].lower()
        if local == "hang":
            await asyncio.sleep(3600)
        if local == "relay-denied":
            # Postfix's answer to a client it does not relay for.
            return "554 5.7.1 <relay-denied@example.org>: Relay access denied"
        match = re.fullmatch(r"reply-(\d{3})", local)
        if match:
            code = match.group(1)
            return f"{code} {code[0]}.0.0 test sink answers {code}"
        self.count += 1
        if self.out:
            self.store(session, envelope, self.count)
        return f"250 2.0.0 OK queued as {self.count}"

    def store(self, session, envelope, number):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        record = {
            "peer": list(session.peer),
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": {k.lower(): str(v) for k, v in message.items()},
            "content_type": message.get_content_type(),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        path = os.path.join(self.out, f"{number:06}.json")
        with open(path + ".partial", "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(path + ".partial", path)


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        )
        # handled=False: let aiosmtpd answer 535 itself on a failure.
        return AuthResult(success=ok, handled=False)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--out")
    parser.add_argument("--auth")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--implicit-tls", action="store_true")
    args = parser.parse_args()

    handler = Handler(args.out)
    options = {"hostname": "sink.test", "enable_SMTPUTF8": True}
    if args.auth:
        user, password = args.auth.split(":", 1)
        options.update(
            authenticator=Authenticator(user, password),
            auth_required=True,
            auth_require_tls=bool(args.tls_cert),
        )
    implicit = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.implicit_tls:
            implicit = context
        else:
            options.update(tls_context=context, require_starttls=True)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, **options), host="127.0.0.1", port=args.port, ssl=implicit
    )
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
