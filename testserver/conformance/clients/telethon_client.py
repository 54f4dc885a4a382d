#!/usr/bin/python3
"""Telethon against tgsafety's simulated Telegram (`scenario-run serve`).

Usage: telethon_client.py READY_FILE PHONE [IDLE_SECONDS]

READY_FILE holds the JSON line `scenario-run serve` prints when ready
(addr, dc, public_key, login_code, usernames). The program walks through the
conformance steps of docs/clients.md and prints one line per step:

    STEP <name> ok|fail <detail as a JSON string>

Before a step the server side must prepare (a ban, dropped connections) it
prints `WAIT <name>` and reads one `GO` line from stdin. It never talks to
Telegram: the only address it dials is the one in READY_FILE.
"""

import asyncio
import json
import sys

from telethon import TelegramClient, errors, events, functions, types
from telethon.crypto import rsa
from telethon.network.connection import ConnectionTcpFull
from telethon.sessions import MemorySession

STEP_TIMEOUT = 20  # seconds; a hung client fails its step instead of the run


class CountingConnection(ConnectionTcpFull):
    """Telethon's default transport, counting TCP connects, so the idle and
    reconnect steps can tell a kept connection from a new one."""

    connects = 0

    async def connect(self, timeout=None, ssl=None):
        await super().connect(timeout=timeout, ssl=ssl)
        CountingConnection.connects += 1


def report(step, ok, detail=""):
    print(f"STEP {step} {'ok' if ok else 'fail'} {json.dumps(str(detail))}", flush=True)


async def wait_for_go(name):
    print(f"WAIT {name}", flush=True)
    # Read stdin off the event loop, so that Telethon keeps answering pings.
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if line.strip() != "GO":
        raise RuntimeError(f"expected GO on stdin before {name}, got {line!r}")


def rpc_detail(e):
    return f"{type(e).__name__}: {e}"


async def main(ready, phone, idle_seconds):
    # --- The few lines that point Telethon at the server -------------------
    with open(ready["public_key"]) as f:
        rsa.add_key(f.read(), old=False)  # trust the server's key for the key exchange
    host, port = ready["addr"].rsplit(":", 1)
    client = TelegramClient(
        MemorySession(), 17349, "not-a-real-hash",  # any api_id / api_hash
        connection=CountingConnection,
        flood_sleep_threshold=0,  # raise every FLOOD_WAIT instead of sleeping through it
    )
    client.session.set_dc(ready["dc"], host, int(port))  # no auth key: a fresh key exchange
    login_code = ready["login_code"]  # the DC number five times ("22222" on DC 2)
    # -------------------------------------------------------------------------

    strangers = ready["usernames"][:8]  # population users, none of them a contact
    burst = ready["usernames"][8:40]
    replies = asyncio.Queue()

    @client.on(events.NewMessage(incoming=True))
    async def on_message(event):
        await replies.put(event.message)

    steps = {}  # step -> passed; later steps name the one they need

    async def step(name, needs, fn):
        missing = [n for n in needs if not steps.get(n)]
        if missing:
            steps[name] = False
            report(name, False, f"not run: needs {', '.join(missing)}")
            return
        try:
            detail = await fn()
            steps[name] = True
            report(name, True, detail)
        except Exception as e:  # a step's failure is data, not the end of the run
            steps[name] = False
            report(name, False, rpc_detail(e))

    def timed(coro):
        return asyncio.wait_for(coro, STEP_TIMEOUT)

    async def connect():
        await timed(client.connect())
        return f"connected to {ready['addr']} DC {ready['dc']}"

    sent = {}

    async def send_code():
        r = await timed(client.send_code_request(phone))
        sent["hash"] = r.phone_code_hash
        return type(r.type).__name__

    async def sign_up():
        try:
            me = await timed(client.sign_in(phone, login_code, phone_code_hash=sent["hash"]))
            return f"signed in as user {me.id}"
        except errors.PhoneNumberUnoccupiedError:
            me = await timed(client.sign_up(login_code, "Conformance", "Telethon",
                                            phone=phone, phone_code_hash=sent["hash"]))
            return f"signed up as user {me.id}"

    async def get_me():
        me = await timed(client.get_me())
        if me is None or me.phone != phone:
            raise RuntimeError(f"get_me returned {me!r}")
        return f"user {me.id} +{me.phone}"

    peers = {}

    async def resolve():
        for name in ["SpamBot"] + strangers:
            r = await timed(client(functions.contacts.ResolveUsernameRequest(name)))
            peers[name] = types.InputPeerUser(r.users[0].id, r.users[0].access_hash)
        return f"@SpamBot and {len(strangers)} strangers"

    async def peer_flood():
        for i, name in enumerate(strangers):
            try:
                await timed(client.send_message(peers[name], "Hello from the conformance suite"))
            except errors.PeerFloodError as e:
                return f"PeerFloodError after {i} cold DMs: {e}"
        raise RuntimeError(f"{len(strangers)} cold DMs sent, no PeerFloodError")

    async def flood_wait():
        for i, name in enumerate(burst):
            try:
                await timed(client(functions.contacts.ResolveUsernameRequest(name)))
            except errors.FloodWaitError as e:
                if e.seconds <= 0:
                    raise RuntimeError(f"FloodWaitError with seconds={e.seconds}")
                return f"FloodWaitError.seconds={e.seconds} after {i} resolves"
        raise RuntimeError(f"{len(burst)} resolves, no FloodWaitError")

    spambot = {}

    async def spambot_update():
        bot = peers["SpamBot"]
        while not replies.empty():
            replies.get_nowait()
        await timed(client.send_message(bot, "/start"))
        while True:
            m = await timed(replies.get())
            if m.sender_id == bot.user_id:
                return m.message

    async def spambot_history():
        msgs = await timed(client.get_messages(peers["SpamBot"], limit=1))
        if not msgs or msgs[0].out:
            raise RuntimeError(f"newest message in the SpamBot chat is not its reply: {msgs!r}")
        return msgs[0].message

    async def idle_then_get_me():
        before = CountingConnection.connects
        await asyncio.sleep(idle_seconds)  # real time: the server's read timeout is what is tested
        me = await timed(client.get_me())
        if me is None:
            raise RuntimeError("get_me after the idle returned None")
        if CountingConnection.connects != before:
            raise RuntimeError(f"the connection was replaced during {idle_seconds} s idle "
                               f"({CountingConnection.connects - before} reconnects); get_me answered")
        return f"get_me answered after {idle_seconds} s idle on the same connection"

    async def ban():
        await wait_for_go("ban")
        try:
            # client.get_me() turns every 401 into None; the raw call raises.
            await timed(client(functions.users.GetUsersRequest([types.InputUserSelf()])))
        except errors.UserDeactivatedBanError as e:
            return f"UserDeactivatedBanError: {e}"
        raise RuntimeError("users.getUsers(self) succeeded after the ban")

    async def reconnect():
        before = CountingConnection.connects
        await wait_for_go("reconnect")
        me = await timed(client.get_me())
        if me is None:
            raise RuntimeError("get_me after the reconnect returned None")
        if CountingConnection.connects == before:
            raise RuntimeError("get_me answered but the client never reconnected")
        return f"{CountingConnection.connects - before} reconnect(s), get_me answered"

    await step("connect", [], connect)
    await step("send_code", ["connect"], send_code)
    await step("sign_up", ["send_code"], sign_up)
    await step("get_me", ["sign_up"], get_me)
    await step("resolve", ["sign_up"], resolve)
    await step("peer_flood", ["resolve"], peer_flood)
    await step("flood_wait", ["sign_up"], flood_wait)
    await step("spambot_update", ["resolve"], spambot_update)
    await step("spambot_history", ["resolve"], spambot_history)
    await step("idle", ["sign_up"], idle_then_get_me)
    await step("ban", ["sign_up"], ban)
    await step("reconnect", ["sign_up"], reconnect)
    await client.disconnect()


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: telethon_client.py READY_FILE PHONE [IDLE_SECONDS]")
    with open(sys.argv[1]) as f:
        ready_line = json.load(f)
    asyncio.run(main(ready_line, sys.argv[2], int(sys.argv[3]) if len(sys.argv) == 4 else 120))
