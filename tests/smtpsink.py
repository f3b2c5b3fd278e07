#!/usr/bin/python3
"""smtpsink -- a real SMTP server for the email tests (Debian's aiosmtpd).

Listens on 127.0.0.1 (port 0: the kernel picks; "PORT N" is printed on
stdout once it listens).  Each accepted message is written to DIR as
NNNN.eml, the bytes as received (dot-stuffing removed by aiosmtpd), with
a line per message in DIR/messages.jsonl: file, mail_from, rcpt_tos, tls
(whether the session had done STARTTLS) and auth (the user it
authenticated as, or null).  DIR/events.log gets one line per session
event (starttls, auth-ok USER, auth-fail USER, message), so a
test can count attempts.

  --cert F --key F      offer STARTTLS with this certificate
  --smtps               instead, TLS from the first byte (smtps://)
  --refuse LOCAL        answer RCPT TO:<LOCAL@...> with 550
  --user U --password-file F
                        require AUTH (LOGIN or PLAIN, after STARTTLS when it
                        is offered) as U with the password in F
Runs until killed.
"""
import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--user")
    ap.add_argument("--password-file")
    ap.add_argument("--refuse")
    ap.add_argument("--smtps", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    password = None
    if args.password_file:
        with open(args.password_file, "rb") as f:
            password = f.read().rstrip(b"\n")

    def event(line):
        with open(os.path.join(args.dir, "events.log"), "a") as f:
            f.write(line + "\n")

    class Handler:
        count = 0

        async def handle_RCPT(self, server, session, envelope, address,
                              rcpt_options):
            if args.refuse and address.startswith(args.refuse + "@"):
                event("rcpt-refused " + address)
                return "550 5.1.1 no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            Handler.count += 1
            name = "%04d.eml" % Handler.count
            with open(os.path.join(args.dir, name), "wb") as f:
                f.write(envelope.original_content)
            user = session.auth_data.login.decode() if isinstance(
                session.auth_data, LoginPassword) else None
            meta = {"file": name, "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "tls": args.smtps or session.ssl is not None,
                    "auth": user}
            with open(os.path.join(args.dir, "messages.jsonl"), "a") as f:
                f.write(json.dumps(meta) + "\n")
            event("message " + name)
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode(errors="replace")
        good = (args.user is not None and user == args.user and
                auth_data.password == password)
        event(("auth-ok " if good else "auth-fail ") + user + " " +
              mechanism)
        # handled=False: aiosmtpd then answers 535 itself.
        return AuthResult(success=good, handled=False, auth_data=auth_data)

    tls = None
    if args.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)

    class Server(SMTP):
        async def smtp_STARTTLS(self, arg):
            event("starttls")
            return await super().smtp_STARTTLS(arg)

    def factory():
        kw = {"tls_context": None if args.smtps else tls,
              "hostname": "smtpsink.test", "authenticator": authenticator}
        if args.user:
            kw["auth_required"] = True
            # Without STARTTLS on offer, AUTH in clear is allowed: a
            # client that wrongly goes on in clear then visibly succeeds.
            # (With --smtps the connection is TLS already.)
            kw["auth_require_tls"] = tls is not None and not args.smtps
        return Server(Handler(), **kw)

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(factory, host="127.0.0.1", port=0,
                           ssl=tls if args.smtps else None))
    print("PORT %d" % server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


if __name__ == "__main__":
    sys.exit(main())
